import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import type { SandboxCluster } from './cluster';
import { etcdctlArgs } from './control-plane';

/**
 * Writes `count` keys of `valueBytes` random (base64, so barely compressible) data into the control-plane node's
 * etcd, numbered from `from`: enough data to make a transfer last (tests) or to measure one (benchmarks).
 */
export async function fillEtcd(
  cluster: SandboxCluster,
  count: number,
  valueBytes: number,
  options: { prefix?: string; from?: number } = {},
): Promise<void> {
  const raw = Math.floor((valueBytes * 3) / 4);
  const from = options.from ?? 1;
  const script = `for i in $(seq ${from} ${from + count - 1}); do head -c ${raw} /dev/urandom | base64 -w0 | etcdctl ${etcdctlArgs().join(' ')} put ${options.prefix ?? '/fill/'}$i >/dev/null || exit 1; done`;
  await cluster.controlPlane.exec(['bash', '-c', script]);
}

/**
 * Moves etcd's revision forward by `writes` (one small put each, over one keep-alive TLS connection to the etcd
 * gRPC gateway): a cluster in use is far beyond the few hundred revisions a fresh kube-apiserver writes while it
 * bootstraps, and tests that tell "etcd started over" from "etcd is in use" need that too.
 */
export async function advanceRevision(cluster: SandboxCluster, writes: number): Promise<void> {
  const node = cluster.controlPlane;
  const pki = (f: string) => readFile(node.path(`/etc/kubernetes/pki/etcd/${f}`));
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 4,
    ca: await pki('ca.crt'),
    cert: await pki('healthcheck-client.crt'),
    key: await pki('healthcheck-client.key'),
  });
  const put = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const body = JSON.stringify({
        key: Buffer.from('/revision/bump').toString('base64'),
        value: Buffer.from(String(i)).toString('base64'),
      });
      const req = request(
        { host: node.ip, port: 2379, path: '/v3/kv/put', method: 'POST', agent, headers: { 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`etcd put: HTTP ${res.statusCode}`))));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  try {
    for (let i = 0; i < writes; i += 4) await Promise.all([0, 1, 2, 3].filter((k) => i + k < writes).map((k) => put(i + k)));
  } finally {
    agent.destroy();
  }
}
