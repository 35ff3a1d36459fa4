import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Config } from '../config/schema';
import { captureClusterChanges } from '../../workflows';
import { captureWorkflowId } from '../../workflows/run-ids';
import { runMetadata } from '../temporal/run-metadata';
import { siteTaskQueue } from '../temporal/connection';

export const CAPTURE_PREFIX = 'capture-';
const CAPTURE_WORKFLOW = 'captureClusterChanges';

export interface CaptureSync {
  /** capture-<cluster> runs started now. */
  started: string[];
  /** Already running: they read backup.continuous from the worker's config, so there is nothing to change. */
  running: string[];
  /** Stopped (cancelled): their cluster no longer has backup.continuous, or left the config. */
  stopped: string[];
}

/**
 * Continuous backups are not a schedule but one long-lived workflow per cluster (capture-<cluster>), reconciled with
 * the config the same way and at the same moment as the schedules (`lifeboat schedule sync`): started for every
 * cluster with backup.continuous, left alone when already running, cancelled when the cluster no longer has it. Only
 * runs on this task queue and its sites' queues are looked at, so engines sharing a namespace do not stop each other's
 * captures.
 */
export async function syncCaptures(client: Client, config: Config, taskQueue: string): Promise<CaptureSync> {
  const result: CaptureSync = { started: [], running: [], stopped: [] };
  const wanted = new Set<string>();
  for (const c of config.clusters) {
    if (!c.backup.continuous) continue;
    const workflowId = captureWorkflowId(c.name);
    wanted.add(workflowId);
    try {
      await client.workflow.start(captureClusterChanges, {
        workflowId,
        taskQueue: siteTaskQueue(taskQueue, c.site),
        args: [{ cluster: c.name }],
        ...runMetadata({
          what: `continuous backup of ${c.name}`,
          cluster: c.name,
          startedBy: '`lifeboat schedule sync` (backup.continuous)',
        }),
      });
      result.started.push(workflowId);
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      result.running.push(workflowId);
    }
  }
  const queues = new Set([taskQueue, ...config.clusters.map((c) => siteTaskQueue(taskQueue, c.site))]);
  const onQueues = [...queues].map((q) => `TaskQueue = '${q.replace(/'/g, "\\'")}'`).join(' OR ');
  const query = `WorkflowType = '${CAPTURE_WORKFLOW}' AND ExecutionStatus = 'Running' AND (${onQueues})`;
  for await (const w of client.workflow.list({ query })) {
    if (!w.workflowId.startsWith(CAPTURE_PREFIX) || wanted.has(w.workflowId)) continue;
    await client.workflow.getHandle(w.workflowId, w.runId).cancel();
    result.stopped.push(w.workflowId);
  }
  return result;
}
