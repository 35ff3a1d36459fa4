import type { NodeSSH } from 'node-ssh';
import { findCluster } from '../src/config/load';
import type { ClusterConfig, NodeConfig } from '../src/config/schema';
import { connectToNode } from '../src/ssh/connect';
import type { ActivityDeps } from './deps';
import { cancellationSignal } from './heartbeat';
import { findNode } from './find-node';

export interface NodeSession {
  cluster: ClusterConfig;
  node: NodeConfig;
  ssh: NodeSSH;
}

/** Resolves cluster and node by name, opens SSH (host key pinned) for the body, and always closes it. */
export async function withNode<T>(deps: ActivityDeps, clusterName: string, nodeName: string | undefined, body: (s: NodeSession) => Promise<T>): Promise<T> {
  const cluster = findCluster(deps.config, clusterName);
  const node = nodeName ? findNode(cluster, nodeName) : cluster.nodes[0]!;
  const ssh = await connectToNode(node, { signal: cancellationSignal() });
  try {
    return await body({ cluster, node, ssh });
  } finally {
    ssh.dispose();
  }
}

/** Run keys name per-run folders on the node; they come from workflows, so they are checked like any input. */
export function checkRunKey(runKey: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(runKey)) throw new Error(`invalid run key "${runKey}": expected letters, digits, ".", "_" or "-"`);
  return runKey;
}
