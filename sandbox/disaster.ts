import type { SandboxNode } from './node';

/**
 * The disaster the alert path answers: every static pod's process on the node killed at once and etcd's data wiped.
 * The kubelet then restarts etcd (empty) and the API server, which writes its default objects again.
 */
export async function wipeControlPlane(node: SandboxNode): Promise<void> {
  const pids = (await node.pods()).flatMap((p) => p.containers.map((c) => c.pid)).filter(Boolean);
  await node.exec(['bash', '-c', `kill -9 ${pids.join(' ')}; rm -rf /var/lib/etcd/member`]);
}
