import type { SandboxCluster } from './cluster';
import { etcdctlArgs } from './control-plane';

/**
 * Writes `count` keys of `valueBytes` random (base64, so barely compressible) data into the control-plane node's
 * etcd, numbered from `from`: enough data to make a transfer last (tests) or to measure one (benchmarks).
 */
export async function fillEtcd(cluster: SandboxCluster, count: number, valueBytes: number, options: { prefix?: string; from?: number } = {}): Promise<void> {
  const raw = Math.floor((valueBytes * 3) / 4);
  const from = options.from ?? 1;
  const script = `for i in $(seq ${from} ${from + count - 1}); do head -c ${raw} /dev/urandom | base64 -w0 | etcdctl ${etcdctlArgs().join(' ')} put ${options.prefix ?? '/fill/'}$i >/dev/null || exit 1; done`;
  await cluster.controlPlane.exec(['bash', '-c', script]);
}
