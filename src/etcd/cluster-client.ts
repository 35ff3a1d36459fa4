import { readFile } from 'node:fs/promises';
import { findCluster } from '../config/load';
import type { ClusterConfig, Config } from '../config/schema';
import { withClusterNode, type NodeSession, type SessionOptions } from '../ssh/session';
import { createEtcdClient, status, type EtcdClient } from './grpc';

/**
 * How the worker talks to a cluster's etcd over gRPC (a watch for continuous backups), the way backups reach it:
 *  - direct mode (`etcd.direct`): the worker dials the endpoints itself with the client certificate on the worker;
 *  - SSH mode (the default): etcd's client port as the node reaches it (`etcd.endpoint`, 127.0.0.1:2379), through a
 *    port forward of an SSH session to the control-plane node, with the node's own client certificate read over that
 *    session. The certificate and key stay in this process's memory: never written on the worker, never logged, never
 *    in a workflow's input or history (errors name the file, not what is in it).
 * The client, the forward and the session are closed however the body ends, and when `signal` aborts.
 */
export async function withEtcdClient<T>(
  config: Config,
  clusterName: string,
  body: (client: EtcdClient, cluster: ClusterConfig) => Promise<T>,
  options: SessionOptions = {},
): Promise<T> {
  const cluster = findCluster(config, clusterName);
  const direct = cluster.etcd.direct;
  if (direct) {
    const tls = {
      ca: await readWorkerFile(direct.caFile, 'etcd.direct.caFile'),
      cert: await readWorkerFile(direct.certFile, 'etcd.direct.certFile'),
      key: await readWorkerFile(direct.keyFile, 'etcd.direct.keyFile'),
    };
    const client = await firstAnswering(
      direct.endpoints.map((url) => hostPortOf(url, 'etcd.direct.endpoints')),
      (endpoint) => createEtcdClient({ endpoint, tls }),
    );
    return closing(client, () => body(client, cluster));
  }
  const { host, port } = splitHostPort(hostPortOf(cluster.etcd.endpoint, 'etcd.endpoint'));
  return withClusterNode(
    config,
    clusterName,
    undefined,
    async (s) => {
      const tls = {
        ca: await readNodeFile(s, cluster.etcd.caFile, 'etcd.caFile'),
        cert: await readNodeFile(s, cluster.etcd.certFile, 'etcd.certFile'),
        key: await readNodeFile(s, cluster.etcd.keyFile, 'etcd.keyFile'),
      };
      const forward = await s.forward(port, host);
      // The tunnel's local port (127.0.0.1) is not the member's name when the node dials another host: the certificate
      // is then checked against that host.
      const serverName = host === '127.0.0.1' ? undefined : host.replace(/^\[|\]$/g, '');
      const client = createEtcdClient({ endpoint: forward.address, tls, ...(serverName ? { serverName } : {}) });
      return closing(client, () => body(client, cluster));
    },
    options,
  );
}

async function closing<T>(client: EtcdClient, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } finally {
    client.close();
  }
}

/** `https://10.0.0.10:2379` -> `10.0.0.10:2379`; a watch with the cluster's client certificate needs TLS. */
export function hostPortOf(url: string, field: string): string {
  const m = /^(https?):\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(url);
  if (!m) throw new Error(`${field}: "${url}" is not a URL like https://127.0.0.1:2379 (host and port)`);
  if (m[1] !== 'https')
    throw new Error(
      `${field}: "${url}" is plain http; lifeboat reaches etcd with its client certificate over https:// (kubeadm's etcd serves only TLS)`,
    );
  return `${m[2]}:${m[3]}`;
}

function splitHostPort(endpoint: string): { host: string; port: number } {
  const i = endpoint.lastIndexOf(':');
  return { host: endpoint.slice(0, i), port: Number(endpoint.slice(i + 1)) };
}

/** The first endpoint whose member answers Status (a watch needs one member; a dead one is passed over, with why). */
async function firstAnswering(endpoints: string[], open: (endpoint: string) => EtcdClient): Promise<EtcdClient> {
  const failures: string[] = [];
  for (const endpoint of endpoints) {
    const client = open(endpoint);
    try {
      await status(client);
      return client;
    } catch (err) {
      client.close();
      failures.push((err as Error).message);
    }
  }
  throw new Error(`no etcd endpoint of etcd.direct.endpoints answers: ${failures.join('; ')}`);
}

async function readWorkerFile(path: string, field: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new Error(`${field}: cannot read ${path} on the worker (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`, { cause: err });
  }
}

/** A PEM file on the node, read over the session into memory; a failure says which file, never any of its content. */
async function readNodeFile(s: NodeSession, path: string, field: string): Promise<Buffer> {
  const r = await s.run(['cat', '--', path], { allowFailure: true });
  if (r.code !== 0) {
    const why =
      r.stderr
        .trim()
        .split('\n')
        .at(-1)
        ?.replace(/^cat: /, '') || `exit ${r.code}`;
    throw new Error(`${field}: cannot read ${path} on node "${s.node.name}" (${why}); check the path and that the SSH user may read it`);
  }
  return Buffer.from(r.stdout, 'utf8');
}
