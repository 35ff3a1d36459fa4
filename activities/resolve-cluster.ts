import { findCluster } from '../src/config/load';
import type { ActivityDeps } from './deps';
import { classified } from './errors';

export interface ClusterSummary {
  name: string;
  nodes: string[];
}

/** Workflows carry only a cluster's name; this checks it exists and returns what is safe to keep in history. */
export function resolveCluster(deps: ActivityDeps) {
  return (input: { cluster: string }): Promise<ClusterSummary> =>
    classified(async () => {
      const cluster = findCluster(deps.config, input.cluster);
      return { name: cluster.name, nodes: cluster.nodes.map((n) => n.name) };
    });
}
