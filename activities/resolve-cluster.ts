import { findCluster } from '../src/config/load';
import { durationMs } from '../src/schedules/backup-schedules';
import type { ActivityDeps } from './deps';

export interface ClusterSummary {
  name: string;
  nodes: string[];
  /** The cluster's recovery policy, applied to every recovery whatever started it (CLI, UI, schedule, alert). */
  recovery?: { approval: 'required' | 'auto'; approvalTimeoutSeconds: number };
}

/** Workflows carry only a cluster's name; this checks it exists and returns what is safe to keep in history. */
export function resolveCluster(deps: ActivityDeps) {
  return async (input: { cluster: string }): Promise<ClusterSummary> => {
    const cluster = findCluster(deps.config, input.cluster);
    return {
      name: cluster.name,
      nodes: cluster.nodes.map((n) => n.name),
      recovery: {
        approval: cluster.recovery.approval,
        approvalTimeoutSeconds: Math.round(durationMs(cluster.recovery.approvalTimeout) / 1000),
      },
    };
  };
}
