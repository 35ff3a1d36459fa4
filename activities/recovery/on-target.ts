import type { NodeSSH } from 'node-ssh';
import { findCluster } from '../../src/config/load';
import type { ClusterConfig, NodeConfig } from '../../src/config/schema';
import type { RecoveryPlan } from '../../src/recovery/plan';
import { connectToNode } from '../../src/ssh/connect';
import { runOnNode, type RemoteResult } from '../../src/ssh/run';
import type { ActivityDeps } from '../deps';
import { cancellationSignal } from '../heartbeat';
import { targetNode } from './plan-recovery';

export interface TargetSession {
  cluster: ClusterConfig;
  node: NodeConfig;
  ssh: NodeSSH;
  run(argv: string[], allowFailure?: boolean, stdin?: string): Promise<RemoteResult>;
  exists(path: string): Promise<boolean>;
}

/** Opens SSH to the plan's target node (host key pinned) for one recovery step. */
export async function onTarget<T>(deps: ActivityDeps, plan: RecoveryPlan, body: (s: TargetSession) => Promise<T>): Promise<T> {
  const cluster = findCluster(deps.config, plan.cluster);
  const node = targetNode(cluster, plan.targetHostKey ? plan.host : plan.node, plan.targetHostKey);
  const ssh = await connectToNode(node, { signal: cancellationSignal() });
  const run = (argv: string[], allowFailure = false, stdin?: string) => runOnNode(ssh, node.name, argv, { allowFailure, stdin });
  try {
    return await body({ cluster, node, ssh, run, exists: async (p) => (await run(['test', '-e', p], true)).code === 0 });
  } finally {
    ssh.dispose();
  }
}

/** Listening TCP ports on the node among `ports`. */
export async function listening(s: TargetSession, ports: number[]): Promise<number[]> {
  const out = await s.run(['sh', '-c', "ss -Htln 2>/dev/null | awk '{print $4}'"], true);
  const open = new Set(out.stdout.split('\n').map((a) => Number(a.split(':').pop())));
  return ports.filter((p) => open.has(p));
}
