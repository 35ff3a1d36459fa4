import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities, NodeProbe } from '../activities';
import { ACTIVITY_OPTIONS } from './activity-options';
import { labelled } from './run-labels';
import { checkInputProblems } from './health-input';

const { probeNode, resolveCluster } = proxyActivities<Activities>(ACTIVITY_OPTIONS.quick);

export interface CheckClusterInput {
  cluster: string;
}

export interface CheckClusterResult {
  cluster: string;
  nodes: NodeProbe[];
}

/** Probes every node of a cluster over SSH: the reachability and tooling check that backups and restores rely on. */
export async function checkCluster(input: CheckClusterInput): Promise<CheckClusterResult> {
  return labelled(
    {
      kind: 'check',
      input,
      summary: () => (checkInputProblems(input).length ? undefined : `reachability check of ${input.cluster}`),
      outcome: () => 'succeeded',
    },
    () => check(input),
  );
}

async function check(input: CheckClusterInput): Promise<CheckClusterResult> {
  // Started from the UI or scripts too: a malformed input fails the run naming the field, before any activity.
  const problems = checkInputProblems(input);
  if (problems.length) throw ApplicationFailure.nonRetryable(`invalid check input: ${problems.join('; ')}`, 'InvalidInput');
  const cluster = await resolveCluster({ cluster: input.cluster });
  const nodes = await Promise.all(cluster.nodes.map((node) => probeNode({ cluster: input.cluster, node })));
  return { cluster: input.cluster, nodes };
}
