import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { join } from 'node:path';
import { KubeClient } from '../src/kube/client';
import { credentialsFromKubeconfig } from '../src/kube/kubeconfig';
import { etcdManifest, kubeApiserverManifest, kubeControllerManagerManifest, kubeSchedulerManifest } from './manifests';
import type { SandboxNode } from './node';
import { createControlPlanePki } from './pki';
import { waitFor } from '../src/devserver/processes';
import { kubeadmFlagsEnv, kubeletConfig, KUBELET_CONFIG } from './runtime';
import type { EtcdLine } from '../src/devserver/binaries';

export const ETCD_IMAGE = 'registry.k8s.io/etcd';
export const APISERVER_IMAGE = 'registry.k8s.io/kube-apiserver';
export const SCHEDULER_IMAGE = 'registry.k8s.io/kube-scheduler';
export const CONTROLLER_MANAGER_IMAGE = 'registry.k8s.io/kube-controller-manager';

export interface ControlPlaneOptions {
  etcdLine: EtcdLine;
  /** Image tags as kubeadm would write them; the node has these images imported (sandbox/images.ts). */
  etcdTag?: string;
  kubernetesVersion?: string;
  /** Without it only etcd runs (enough for backup tests that need no API). */
  withApiserver: boolean;
  /** kube-scheduler and kube-controller-manager as static pods too (default: with the API server, as kubeadm does). */
  withSchedulerAndControllerManager?: boolean;
  /** Reuse a PKI instead of creating one (a new node that takes over an old one's identity). */
  skipPki?: boolean;
  startTimeoutMs?: number;
}

export function etcdctlArgs(): string[] {
  const pki = '/etc/kubernetes/pki/etcd';
  return [
    '--endpoints=https://127.0.0.1:2379',
    `--cacert=${pki}/ca.crt`,
    `--cert=${pki}/healthcheck-client.crt`,
    `--key=${pki}/healthcheck-client.key`,
  ];
}

/**
 * `kubeadm init` in miniature: PKI, kubeconfigs, static-pod manifests, the kubelet's configuration (kubelet-start and
 * kubelet-finalize); then waits until the node's kubelet has the control plane up.
 */
export async function bootstrapControlPlane(node: SandboxNode, o: ControlPlaneOptions): Promise<{ apiServer: string }> {
  const apiServer = `https://${node.ip}:6443`;
  if (!o.skipPki)
    await createControlPlanePki({ root: node.path('/etc/kubernetes'), nodeName: node.name, nodeIPs: [node.ip], apiServerUrl: apiServer });
  const manifestOptions = {
    nodeName: node.name,
    ip: node.ip,
    etcdImage: `${ETCD_IMAGE}:${o.etcdTag ?? `${o.etcdLine}.0-0`}`,
    apiserverImage: `${APISERVER_IMAGE}:${o.kubernetesVersion ?? 'v1.34.0'}`,
    schedulerImage: `${SCHEDULER_IMAGE}:${o.kubernetesVersion ?? 'v1.34.0'}`,
    controllerManagerImage: `${CONTROLLER_MANAGER_IMAGE}:${o.kubernetesVersion ?? 'v1.34.0'}`,
    etcdFastFlags: o.etcdLine !== '3.4',
  };
  const withControllers = o.withApiserver && (o.withSchedulerAndControllerManager ?? true);
  const manifests = node.path('/etc/kubernetes/manifests');
  await writeFile(join(manifests, 'etcd.yaml'), etcdManifest(manifestOptions));
  if (o.withApiserver) await writeFile(join(manifests, 'kube-apiserver.yaml'), kubeApiserverManifest(manifestOptions));
  if (withControllers) {
    await writeFile(join(manifests, 'kube-scheduler.yaml'), kubeSchedulerManifest(manifestOptions));
    await writeFile(join(manifests, 'kube-controller-manager.yaml'), kubeControllerManagerManifest(manifestOptions));
  }
  await startKubelet(node, o.startTimeoutMs);
  await waitForControlPlane(node, { withApiserver: o.withApiserver, timeoutMs: o.startTimeoutMs });
  if (o.withApiserver && !o.skipPki) await grantKubeadmClusterAdmins(node);
  if (withControllers) await waitForControllers(node, o.startTimeoutMs);
  return { apiServer };
}

/**
 * kube-scheduler and kube-controller-manager answer /healthz on their loopback secure ports, and the controller
 * manager has published the cluster CA into the default namespace (its controllers run): objects it creates on its
 * own do not appear in the middle of a test.
 */
export async function waitForControllers(node: SandboxNode, timeoutMs = 120_000): Promise<void> {
  const healthz = (port: number) =>
    node.exec(['curl', '-sfk', '--max-time', '2', `https://127.0.0.1:${port}/healthz`]).then(
      (t) => t.trim() === 'ok',
      () => false,
    );
  const client = await adminClient(node);
  try {
    await waitFor(`kube-scheduler /healthz (10259) on node ${node.name}`, () => healthz(10259), timeoutMs, 300);
    await waitFor(`kube-controller-manager /healthz (10257) on node ${node.name}`, () => healthz(10257), timeoutMs, 300);
    await waitFor(
      `kube-controller-manager publishing kube-root-ca.crt on node ${node.name}`,
      async () => {
        const { status } = await client.raw('GET', '/api/v1/namespaces/default/configmaps/kube-root-ca.crt');
        return status === 200;
      },
      timeoutMs,
      300,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await node.logs()}`, { cause: err });
  }
}

export async function waitForEtcd(node: SandboxNode, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    `etcd on node ${node.name}\n${await node.logs().catch(() => '')}`,
    async () => {
      await node.exec(['etcdctl', ...etcdctlArgs(), 'endpoint', 'health']);
      return true;
    },
    timeoutMs,
    300,
  );
}

export async function adminClient(node: SandboxNode, conf = 'super-admin.conf'): Promise<KubeClient> {
  const text = await readFile(node.path(`/etc/kubernetes/${conf}`), 'utf8');
  return new KubeClient(credentialsFromKubeconfig(text, `https://${node.ip}:6443`));
}

export async function waitForControlPlane(node: SandboxNode, o: { withApiserver: boolean; timeoutMs?: number }): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 120_000;
  await waitForEtcd(node, timeoutMs);
  if (!o.withApiserver) return;
  const client = await adminClient(node);
  try {
    await waitFor(`kube-apiserver /readyz on node ${node.name}`, () => client.ready(), timeoutMs, 500);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await node.logs()}`, { cause: err });
  }
}

/** kubeadm binds the kubeadm:cluster-admins group (admin.conf's) to cluster-admin at init; the sandbox does too. */
async function grantKubeadmClusterAdmins(node: SandboxNode): Promise<void> {
  const client = await adminClient(node);
  await client.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'kubeadm:cluster-admins' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'kubeadm:cluster-admins' }],
  });
}

/**
 * kubeadm's kubelet-start and kubelet-finalize phases: the kubelet's config.yaml and kubeadm-flags.env, its client
 * certificate (kubelet.conf's, system:node:<name>) as the rotatable /var/lib/kubelet/pki/kubelet-client-current.pem
 * that kubelet.conf then points at, and a restart of the kubelet the machine came with.
 */
export async function startKubelet(node: SandboxNode, timeoutMs = 60_000): Promise<void> {
  const kubeletConf = node.path('/etc/kubernetes/kubelet.conf');
  const creds = credentialsFromKubeconfig(await readFile(kubeletConf, 'utf8'));
  const pki = node.path('/var/lib/kubelet/pki');
  await mkdir(pki, { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().slice(0, 19).replace(/[T:]/g, '-');
  const pem = `kubelet-client-${stamp}.pem`;
  await writeFile(join(pki, pem), Buffer.concat([creds.certPem!, creds.keyPem!]), { mode: 0o600 });
  await symlink(`/var/lib/kubelet/pki/${pem}`, join(pki, 'kubelet-client-current.pem'));
  await writeFile(
    kubeletConf,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'kubernetes', cluster: { 'certificate-authority-data': creds.caPem.toString('base64'), server: creds.server } }],
      contexts: [{ name: `system:node:${node.name}@kubernetes`, context: { cluster: 'kubernetes', user: `system:node:${node.name}` } }],
      'current-context': `system:node:${node.name}@kubernetes`,
      users: [
        {
          name: `system:node:${node.name}`,
          user: {
            'client-certificate': '/var/lib/kubelet/pki/kubelet-client-current.pem',
            'client-key': '/var/lib/kubelet/pki/kubelet-client-current.pem',
          },
        },
      ],
    }),
    { mode: 0o600 },
  );
  await chmod(kubeletConf, 0o600);
  await writeFile(node.path(KUBELET_CONFIG), kubeletConfig());
  await writeFile(node.path('/var/lib/kubelet/kubeadm-flags.env'), kubeadmFlagsEnv());
  await node.exec(['/usr/local/bin/systemctl', 'restart', 'kubelet']);
  await waitFor(
    `kubelet /healthz on node ${node.name} (log: ${join(node.dir, 'log/kubelet.log')})`,
    async () => (await node.exec(['curl', '-sf', '--max-time', '2', 'http://127.0.0.1:10248/healthz']).catch(() => '')).trim() === 'ok',
    timeoutMs,
    200,
  );
}
