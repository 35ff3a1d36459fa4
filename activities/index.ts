import type { ActivityDeps } from './deps';
import { probeNode } from './probe-node';
import { resolveCluster } from './resolve-cluster';

/** Every activity the worker registers, bound to its dependencies. Workflows import only the type. */
export function createActivities(deps: ActivityDeps) {
  return {
    probeNode: probeNode(deps),
    resolveCluster: resolveCluster(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps };
export type { NodeProbe, ProbeNodeInput } from './probe-node';
export type { ClusterSummary } from './resolve-cluster';
