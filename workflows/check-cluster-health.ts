import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { HealthReport } from '../src/health/types';

// A health check is only worth having now: a short timeout and one retry; the next scheduled run is the real retry.
const { checkHealth } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', maximumAttempts: 2 },
});

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
  return checkHealth({ cluster: input.cluster, node: input.node, timeoutSeconds: input.timeoutSeconds });
}
