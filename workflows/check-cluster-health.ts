import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { HealthReport } from '../src/health/types';
import { ACTIVITY_OPTIONS } from './activity-options';
import { labelled } from './run-labels';

const { checkHealth } = proxyActivities<Activities>(ACTIVITY_OPTIONS.health);

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export interface CheckClusterHealthInput {
  cluster: string;
  node?: string;
  timeoutSeconds?: number;
}

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

function healthInputProblems(input: CheckClusterHealthInput): string[] {
  // Started by schedules, the UI or scripts: garbage fails the run at once instead of wedging its workflow task.
  const problems: string[] = [];
  if (!input || typeof input !== 'object' || Array.isArray(input)) problems.push('input: expected an object like {"cluster": "prod"}');
  else {
    if (typeof input.cluster !== 'string' || !NAME.test(input.cluster))
      problems.push('cluster: expected a cluster name from the config (lowercase letters, digits, "-", at most 63)');
    if (input.node !== undefined && (typeof input.node !== 'string' || !NAME.test(input.node)))
      problems.push('node: expected a node name from the config');
    if (
      input.timeoutSeconds !== undefined &&
      (typeof input.timeoutSeconds !== 'number' ||
        !Number.isInteger(input.timeoutSeconds) ||
        input.timeoutSeconds < 1 ||
        input.timeoutSeconds > 60)
    ) {
      problems.push('timeoutSeconds: expected a whole number of seconds from 1 to 60');
    }
  }
  return problems;
}
