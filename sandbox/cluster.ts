import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterConfig, StorageConfig } from '../src/config/schema';
import { clusterSchema } from '../src/config/schema';
import { serverBinaries, requireBinary, type EtcdLine, type ServerBinaries } from '../src/devserver/binaries';
import { APISERVER_IMAGE, bootstrapControlPlane, CONTROLLER_MANAGER_IMAGE, ETCD_IMAGE, SCHEDULER_IMAGE } from './control-plane';
import { sh } from './netns';
import { binariesImage, ensureImage, pauseImage } from './images';
import { createSandboxNode, type SandboxNode } from './node';

export interface SandboxClusterOptions {
  name?: string;
  etcdLine?: EtcdLine;
  withApiserver?: boolean;
  /** kube-scheduler and kube-controller-manager static pods (default: on with the API server). */
  withSchedulerAndControllerManager?: boolean;
  /** Extra, empty nodes (sshd only) that can become the control plane in a new-node recovery. */
  spareNodes?: string[];
  storage: StorageConfig;
  /** Parent folder; a temp folder when omitted. */
  dir?: string;
}

export interface SandboxCluster {
  name: string;
  dir: string;
  binaries: ServerBinaries;
  controlPlane: SandboxNode;
  nodes: Map<string, SandboxNode>;
  apiServer?: string;
  /** Private key file of the engine's SSH identity (authorized on every node). */
  sshKeyFile: string;
  /** The cluster as a user would write it in the config file: pinned host keys, key file reference. */
  config: ClusterConfig;
  /** Adds a node later (e.g. a replacement taking over `subnet`). */
  addNode(name: string, options?: { subnet?: number; etcdLine?: EtcdLine }): Promise<SandboxNode>;
  logs(): Promise<string>;
  destroy(): Promise<void>;
}

/** etcd's image tag as kubeadm writes it (3.6.16-0), from the version in the binaries' folder name. */
function etcdTag(binaries: ServerBinaries, line: EtcdLine): string {
  return `${/etcd-v([\d.]+)/.exec(binaries.etcd[line])?.[1] ?? '3.4.23'}-0`;
}

/** A whole single-control-plane cluster in network namespaces, with the engine's SSH identity and its config. */
export async function createSandboxCluster(o: SandboxClusterOptions): Promise<SandboxCluster> {
  const name = o.name ?? 'sandbox';
  const etcdLine = o.etcdLine ?? '3.6';
  const binaries = await serverBinaries();
  await requireBinary(join(binaries.etcd[etcdLine], 'etcd'), `etcd ${etcdLine}`);
  for (const [path, what] of [
    [binaries.kubelet, 'kubelet'],
    [binaries.crictl, 'crictl'],
    [binaries.pause, 'the pause binary'],
    ['/usr/bin/containerd', 'containerd (Debian package)'],
    ['/usr/sbin/runc', 'runc (Debian package)'],
  ]) {
    await requireBinary(path, what);
  }
  if (o.withApiserver) await requireBinary(binaries.kubeApiserver, 'kube-apiserver');
  if (o.withApiserver && (o.withSchedulerAndControllerManager ?? true)) {
    await requireBinary(binaries.kubeScheduler, 'kube-scheduler');
    await requireBinary(binaries.kubeControllerManager, 'kube-controller-manager');
  }
  const kubernetesVersion = /kubernetes-(v[\d.]+)/.exec(binaries.kubeApiserver)?.[1];
  // The images every node of this cluster imports: the pause image, its etcd line's, and the control plane's when
  // the cluster has one (a spare node may become the control plane).
  const kubeImages = o.withApiserver
    ? [
        binariesImage(`${APISERVER_IMAGE}:${kubernetesVersion ?? 'v1.34.0'}`, [binaries.kubeApiserver]),
        ...((o.withSchedulerAndControllerManager ?? true)
          ? [
              binariesImage(`${SCHEDULER_IMAGE}:${kubernetesVersion ?? 'v1.34.0'}`, [binaries.kubeScheduler]),
              binariesImage(`${CONTROLLER_MANAGER_IMAGE}:${kubernetesVersion ?? 'v1.34.0'}`, [binaries.kubeControllerManager]),
            ]
          : []),
      ]
    : [];
  const imagesFor = async (line: EtcdLine) => {
    const specs = [
      pauseImage(binaries.pause),
      binariesImage(
        `${ETCD_IMAGE}:${etcdTag(binaries, line)}`,
        ['etcd', 'etcdctl', 'etcdutl'].map((b) => join(binaries.etcd[line], b)).filter((b) => existsSync(b)),
      ),
      ...kubeImages,
    ];
    const tarballs: string[] = [];
    for (const spec of specs) tarballs.push(await ensureImage(spec, binaries.imagesDir));
    return tarballs;
  };
  const dir = o.dir ?? (await mkdtemp(join(tmpdir(), `lifeboat-${name}-`)));
  await mkdir(dir, { recursive: true });
  const sshKeyFile = join(dir, 'engine_ed25519');
  await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'lifeboat-engine', '-f', sshKeyFile]);
  const authorizedKey = await readFile(`${sshKeyFile}.pub`, 'utf8');
  const nodes = new Map<string, SandboxNode>();

  const addNode = async (nodeName: string, opts: { subnet?: number; etcdLine?: EtcdLine } = {}) => {
    const line = opts.etcdLine ?? etcdLine;
    const node = await createSandboxNode({
      name: nodeName,
      dir: join(dir, 'nodes', `${nodeName}-${nodes.size}`),
      authorizedKey,
      etcdBinDir: binaries.etcd[line],
      kubelet: { binary: binaries.kubelet, crictl: binaries.crictl, images: await imagesFor(line) },
      subnet: opts.subnet,
    });
    nodes.set(nodeName, node);
    return node;
  };

  try {
    const controlPlane = await addNode('cp1');
    for (const spare of o.spareNodes ?? []) await addNode(spare);
    const { apiServer } = await bootstrapControlPlane(controlPlane, {
      etcdLine,
      etcdTag: etcdTag(binaries, etcdLine),
      kubernetesVersion,
      withApiserver: o.withApiserver ?? false,
      withSchedulerAndControllerManager: o.withSchedulerAndControllerManager,
    });
    const config = clusterSchema.parse({
      name,
      nodes: [...nodes.values()].map((n) => ({
        name: n.name,
        host: n.ip,
        user: 'root',
        privateKey: { file: sshKeyFile },
        hostKey: n.hostKey,
      })),
      apiServer: o.withApiserver ? apiServer : undefined,
      storage: o.storage,
      // Tests restore the same cluster several times in a row on purpose; the cooldown has tests of its own.
      recovery: { cooldown: '0s' },
    });
    const cluster: SandboxCluster = {
      name,
      dir,
      binaries,
      controlPlane,
      nodes,
      apiServer: o.withApiserver ? apiServer : undefined,
      sshKeyFile,
      config,
      addNode,
      async logs() {
        return (await Promise.all([...nodes.values()].map((n) => n.logs()))).join('\n');
      },
      async destroy() {
        await Promise.all([...nodes.values()].map((n) => n.destroy().catch(() => undefined)));
        if (!process.env.LIFEBOAT_KEEP_SANDBOX) await rm(dir, { recursive: true, force: true });
      },
    };
    return cluster;
  } catch (err) {
    const logs = await Promise.all([...nodes.values()].map((n) => n.logs().catch(() => '')));
    await Promise.all([...nodes.values()].map((n) => n.destroy().catch(() => undefined)));
    throw new Error(`${(err as Error).message}\n${logs.join('\n')}`, { cause: err });
  }
}
