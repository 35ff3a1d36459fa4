import type { Client } from '@temporalio/client';

export interface RunInfo {
  workflowId: string;
  runId: string;
  type: string;
  status: string;
  startTime: Date;
  closeTime?: Date;
}

/** Every run the query matches (all of the namespace without one), oldest first. */
export async function listRuns(client: Client, query?: string): Promise<RunInfo[]> {
  const out: RunInfo[] = [];
  for await (const w of client.workflow.list(query ? { query } : {}))
    out.push({
      workflowId: w.workflowId,
      runId: w.runId,
      type: w.type,
      status: w.status.name,
      startTime: w.startTime,
      closeTime: w.closeTime,
    });
  return out.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
}

/** How a closed run failed, from its last event (the failure's message), for the report. */
export async function failureOf(client: Client, run: RunInfo): Promise<string> {
  const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
  const last = history.events?.at(-1);
  const failure = last?.workflowExecutionFailedEventAttributes?.failure;
  const reason = last?.workflowExecutionTerminatedEventAttributes?.reason;
  return failure?.cause?.message ?? failure?.message ?? (reason ? `terminated: ${reason}` : run.status.toLowerCase());
}
