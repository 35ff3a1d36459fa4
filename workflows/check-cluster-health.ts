import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { HealthReport } from '../src/health/types';
import { ACTIVITY_OPTIONS } from './activity-options';
import { labelled } from './run-labels';
import { healthInputProblems, type CheckClusterHealthInput } from './health-input';

const { checkHealth } = proxyActivities<Activities>(ACTIVITY_OPTIONS.health);

export type { CheckClusterHealthInput };

/**
 * One health check of a cluster (run by the health-<cluster> schedule): the checkHealth activity probes the control
 * plane and sets the worker's lifeboat_* gauges; the report is the workflow's result, visible in the UI.
 */
export async function checkClusterHealth(input: CheckClusterHealthInput): Promise<HealthReport> {
  return labelled(
    {
      kind: 'health',
      input,
      summary: () => (healthInputProblems(input).length ? undefined : `health check of ${input.cluster}`),
      outcome: (r) => (r.problems.length ? 'unhealthy' : 'healthy'),
    },
    () => check(input),
  );
}

async function check(input: CheckClusterHealthInput): Promise<HealthReport> {
  const problems = healthInputProblems(input);
  if (problems.length) throw ApplicationFailure.nonRetryable(`invalid health check input: ${problems.join('; ')}`, 'InvalidInput');
  return checkHealth({ cluster: input.cluster, node: input.node, timeoutSeconds: input.timeoutSeconds });
}
