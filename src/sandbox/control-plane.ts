import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KubeClient } from '../kube/client';
import { credentialsFromKubeconfig } from '../kube/kubeconfig';
import { etcdManifest, kubeApiserverManifest } from './manifests';
import type { SandboxNode } from './node';
import { createControlPlanePki } from './pki';
import { waitFor } from './processes';
import type { EtcdLine } from './binaries';

export const ETCD_IMAGE = 'registry.k8s.io/etcd';
export const APISERVER_IMAGE = 'registry.k8s.io/kube-apiserver';

export interface ControlPlaneOptions {
  etcdLine: EtcdLine;
  /** Image tags as kubeadm would write them (the fixture maps images to binaries by name, not tag). */
  etcdTag?: string;
  kubernetesVersion?: string;
  /** Without it only etcd runs (enough for backup tests that need no API). */
  withApiserver: boolean;
  /** Reuse a PKI instead of creating one (a new node that takes over an old one's identity). */
  skipPki?: boolean;
  startTimeoutMs?: number;
}

export function etcdctlArgs(): string[] {
  const pki = '/etc/kubernetes/pki/etcd';
  return ['--endpoints=https://127.0.0.1:2379', `--cacert=${pki}/ca.crt`, `--cert=${pki}/healthcheck-client.crt`, `--key=${pki}/healthcheck-client.key`];
}

/** `kubeadm init` in miniature: PKI, kubeconfigs, static-pod manifests; then waits until the kubelet fixture has them up. */
export async function bootstrapControlPlane(node: SandboxNode, o: ControlPlaneOptions): Promise<{ apiServer: string }> {
  const apiServer = `https://${node.ip}:6443`;
  if (!o.skipPki) await createControlPlanePki({ root: node.path('/etc/kubernetes'), nodeName: node.name, nodeIPs: [node.ip], apiServerUrl: apiServer });
  const manifestOptions = {
    nodeName: node.name,
    ip: node.ip,
    etcdImage: `${ETCD_IMAGE}:${o.etcdTag ?? `${o.etcdLine}.0-0`}`,
    apiserverImage: `${APISERVER_IMAGE}:${o.kubernetesVersion ?? 'v1.34.0'}`,
    etcdFastFlags: o.etcdLine !== '3.4',
  };
  const manifests = node.path('/etc/kubernetes/manifests');
  await writeFile(join(manifests, 'etcd.yaml'), etcdManifest(manifestOptions));
  if (o.withApiserver) await writeFile(join(manifests, 'kube-apiserver.yaml'), kubeApiserverManifest(manifestOptions));
  await waitForControlPlane(node, { withApiserver: o.withApiserver, timeoutMs: o.startTimeoutMs });
  if (o.withApiserver && !o.skipPki) await grantKubeadmClusterAdmins(node);
  return { apiServer };
}

export async function waitForEtcd(node: SandboxNode, timeoutMs = 60_000): Promise<void> {
  await waitFor(`etcd on node ${node.name}\n${await node.logs().catch(() => '')}`, async () => {
    await node.exec(['etcdctl', ...etcdctlArgs(), 'endpoint', 'health']);
    return true;
  }, timeoutMs, 300);
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
    throw new Error(`${(err as Error).message}\n${await node.logs()}`);
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
