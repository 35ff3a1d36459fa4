import { readFile } from 'node:fs/promises';
import type { ClusterConfig } from '../config/schema';
import { createEtcdClient, type EtcdClient } from '../etcd/grpc/client';

type DirectMode = NonNullable<ClusterConfig['etcd']['direct']>;

/** `https://10.0.0.10:2379` -> `10.0.0.10:2379` (`[fd00::1]:2379` for IPv6), as the gRPC client takes it. */
export function grpcEndpointOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname.includes(':') && !u.hostname.startsWith('[') ? `[${u.hostname}]` : u.hostname}:${u.port || '2379'}`;
}

/**
 * A gRPC client to the first of direct mode's endpoints, with the worker's copy of the client certificate. One member:
 * a snapshot, the Status reads that pin its revision and the counts at that revision must all come from the same one.
 */
export async function directEtcdClient(d: DirectMode): Promise<EtcdClient> {
  const [ca, cert, key] = await Promise.all([d.caFile, d.certFile, d.keyFile].map((f) => readFile(f)));
  return createEtcdClient({ endpoint: grpcEndpointOf(d.endpoints[0]), tls: { ca, cert, key } });
}
