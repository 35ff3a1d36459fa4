import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterConfig, StorageConfig } from '../config/schema';
import { clusterSchema } from '../config/schema';
import { serverBinaries, requireBinary, type EtcdLine, type ServerBinaries } from './binaries';
import { APISERVER_IMAGE, bootstrapControlPlane, CONTROLLER_MANAGER_IMAGE, ETCD_IMAGE, SCHEDULER_IMAGE } from './control-plane';
import { sh } from './netns';
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

/** A whole single-control-plane cluster in network namespaces, with the engine's SSH identity and its config. */
export async function createSandboxCluster(o: SandboxClusterOptions): Promise<SandboxCluster> {
  const name = o.name ?? 'sandbox';
  const etcdLine = o.etcdLine ?? '3.6';
  const binaries = await serverBinaries();
  await requireBinary(join(binaries.etcd[etcdLine], 'etcd'), `etcd ${etcdLine}`);
  if (o.withApiserver) await requireBinary(binaries.kubeApiserver, 'kube-apiserver');
  if (o.withApiserver && (o.withSchedulerAndControllerManager ?? true)) {
    await requireBinary(binaries.kubeScheduler, 'kube-scheduler');
    await requireBinary(binaries.kubeControllerManager, 'kube-controller-manager');
  }
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
      images: {
        [ETCD_IMAGE]: binaries.etcd[line],
        [APISERVER_IMAGE]: join(binaries.kubeApiserver, '..'),
        [SCHEDULER_IMAGE]: join(binaries.kubeScheduler, '..'),
        [CONTROLLER_MANAGER_IMAGE]: join(binaries.kubeControllerManager, '..'),
      },
      subnet: opts.subnet,
    });
    nodes.set(nodeName, node);
    return node;
  };

  try {
    const controlPlane = await addNode('cp1');
    for (const spare of o.spareNodes ?? []) await addNode(spare);
    const etcdVersion = /etcd-v([\d.]+)/.exec(binaries.etcd[etcdLine])?.[1] ?? '3.4.23';
    const kubernetesVersion = /kubernetes-(v[\d.]+)/.exec(binaries.kubeApiserver)?.[1];
    const { apiServer } = await bootstrapControlPlane(controlPlane, { etcdLine, etcdTag: `${etcdVersion}-0`, kubernetesVersion, withApiserver: o.withApiserver ?? false, withSchedulerAndControllerManager: o.withSchedulerAndControllerManager });
    const config = clusterSchema.parse({
      name,
      nodes: [...nodes.values()].map((n) => ({ name: n.name, host: n.ip, user: 'root', privateKey: { file: sshKeyFile }, hostKey: n.hostKey })),
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
    throw new Error(`${(err as Error).message}\n${logs.join('\n')}`);
  }
}
