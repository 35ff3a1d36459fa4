import { WorkflowFailedError, type Client, type ScheduleDescription } from '@temporalio/client';

export interface LastRun {
  takenAt: Date;
  workflowId: string;
  /** RUNNING, COMPLETED, FAILED, TIMED_OUT, TERMINATED, CANCELED, ... as Temporal reports the run. */
  status: string;
  /** Why it failed, for a failed run: the workflow's failure message (it names the cluster and the step). */
  error?: string;
}

/**
 * The schedule's most recent run and how it ended, read from the run itself: the schedule only records that it
 * started one. Undefined when it never ran; a run already deleted by retention reads as "unknown".
 */
export async function lastRunOf(client: Client, schedule: ScheduleDescription): Promise<LastRun | undefined> {
  const last = schedule.info.recentActions.at(-1);
  if (!last) return undefined;
  const { workflowId, firstExecutionRunId } = last.action.workflow;
  const handle = client.workflow.getHandle(workflowId, firstExecutionRunId);
  const status = await handle.describe().then(
    (d) => d.status.name,
    () => 'unknown',
  );
  let error: string | undefined;
  if (status === 'FAILED') {
    error = await handle.result().then(
      () => undefined,
      (err: unknown) => (err instanceof WorkflowFailedError && err.cause ? err.cause.message : String(err)),
    );
  }
  return { takenAt: last.takenAt, workflowId, status, error };
}

/** "2026-11-26T01:00:00.000Z COMPLETED", "... FAILED: cluster "prod", step plan: ...", or "never". */
export function formatLastRun(run: LastRun | undefined): string {
  if (!run) return 'never';
  return `${run.takenAt.toISOString()} ${run.status}${run.error ? `: ${run.error.split('\n')[0].slice(0, 300)}` : ''}`;
}
