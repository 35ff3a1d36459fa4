import { findCluster } from '../../src/config/load';
import type { ClusterConfig } from '../../src/config/schema';
import type { RecoveryPlan } from '../../src/recovery/plan';
import { withSession, type NodeSession } from '../../src/ssh/session';
import type { ActivityDeps } from '../deps';
import { cancellationSignal } from '../heartbeat';
import { targetNode } from './plan-recovery';

export interface TargetSession extends NodeSession {
  cluster: ClusterConfig;
}

/** A session on the plan's target node (host key pinned) for one recovery step, closed when the activity is cancelled. */
export async function onTarget<T>(deps: ActivityDeps, plan: RecoveryPlan, body: (s: TargetSession) => Promise<T>): Promise<T> {
  const cluster = findCluster(deps.config, plan.cluster);
  const node = targetNode(cluster, plan.targetHostKey ? plan.host : plan.node, plan.targetHostKey);
  return withSession(node, (s) => body({ ...s, cluster }), { signal: cancellationSignal() });
}

/** Listening TCP ports on the node among `ports`. */
export async function listening(s: TargetSession, ports: number[]): Promise<number[]> {
  const out = await s.run(['sh', '-c', "ss -Htln 2>/dev/null | awk '{print $4}'"], { allowFailure: true });
  const open = new Set(out.stdout.split('\n').map((a) => Number(a.split(':').pop())));
  return ports.filter((p) => open.has(p));
}
