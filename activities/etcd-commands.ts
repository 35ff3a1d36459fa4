import type { ClusterConfig } from '../src/config/schema';

/** etcdctl against the node's local endpoint with the node's client certificates (kubeadm paths by default). */
export function etcdctl(cluster: ClusterConfig, ...args: string[]): string[] {
  const e = cluster.etcd;
  return [e.etcdctl, `--endpoints=${e.endpoint}`, `--cacert=${e.caFile}`, `--cert=${e.certFile}`, `--key=${e.keyFile}`, ...args];
}
