import { restoredRevisionOf } from '../recovery/plan';
import type { Revision, RevisionLike } from '../etcd/revision';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';

/** Where the cluster's recovery stands, read from Temporal itself (workflow `recover-<cluster>`). */
export interface RecoveryState {
  inProgress: boolean;
  /** The last closed run (absent while one runs, or when there never was one). */
  last?: {
    status: string;
    /** COMPLETED with outcome "restored". */
    success: boolean;
    outcome?: string;
    startedAt: string;
    closedAt: string;
    durationSeconds: number;
  };
  /**
   * The newest run that restored (COMPLETED, outcome "restored"), even when runs that did not (a dry run, a rejection,
   * a failure) came after it: a restore is what explains etcd's revision being below the newest backup's.
   */
  lastRestore?: { closedAt: string; restoredRevision?: Revision; runId: string };
  /** No recover-<cluster> workflow exists. */
  never: boolean;
}

type RecoveryResult = {
  outcome?: string;
  plan?: { snapshot?: { revision?: RevisionLike }; tool?: { bumpRevision?: boolean }; revisionBump?: RevisionLike };
};

/** What etcd's revision was right after a restore (read from the run's result, so as untrusted as any payload). */
function restoredRevisionOfResult(result: RecoveryResult | undefined): Revision | undefined {
  const plan = result?.plan;
  if (result?.outcome !== 'restored' || plan?.snapshot?.revision === undefined) return undefined;
  try {
    return restoredRevisionOf({ ...plan, snapshot: { revision: plan.snapshot.revision } });
  } catch {
    return undefined; // not a revision: no figure, so nothing is concluded from it
  }
}

/** Completed runs read, newest first, when looking past the last run for the last restore. */
const RUNS_LOOKED_AT = 10;

function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>(
      (_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${Math.round(ms / 1000)} s`)), ms)),
    ),
  ]).finally(() => clearTimeout(timer));
}

/**
 * `describe()` of recover-<cluster>: RUNNING means a recovery is in progress; a closed run gives the last one's
 * duration and whether it restored (status COMPLETED and outcome "restored": a dry run, a rejection, a failure or
 * a termination is not a successful recovery), and the last run that did restore, looking past up to 10 completed
 * runs that did not. Rejects when Temporal cannot be asked.
 */
export async function recoveryState(client: Client, cluster: string, timeoutMs: number): Promise<RecoveryState> {
  const workflowId = `recover-${cluster}`;
  let d;
  try {
    d = await within(timeoutMs, `describe ${workflowId}`, client.workflow.getHandle(workflowId).describe());
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { inProgress: false, never: true };
    throw err;
  }
  const status = d.status.name;
  if (status === 'RUNNING' || status === 'PAUSED') return { inProgress: true, never: false };
  const closedAt = d.closeTime ?? new Date();
  const resultOf = (runId: string) =>
    // Not caught: a completed run whose result cannot be read might be a restore, and a restore since the newest
    // backup is what explains a revision below it; guessing "no restore" would make intact data look lost.
    within(
      timeoutMs,
      `result of ${workflowId} run ${runId}`,
      client.workflow.getHandle(workflowId, runId, { followRuns: false }).result(),
    ) as Promise<RecoveryResult | undefined>;
  let outcome: string | undefined;
  let lastRestore: RecoveryState['lastRestore'];
  if (status === 'COMPLETED') {
    const result = await resultOf(d.runId);
    outcome = result?.outcome;
    if (outcome === 'restored')
      lastRestore = { closedAt: closedAt.toISOString(), restoredRevision: restoredRevisionOfResult(result), runId: d.runId };
  }
  if (!lastRestore) {
    const earlier: { runId: string; closeTime: Date }[] = [];
    const query = `WorkflowId = '${workflowId}' AND ExecutionStatus = 'Completed'`;
    await within(
      timeoutMs,
      `list of ${workflowId} runs`,
      (async () => {
        // Runs of one workflow id never overlap, so the list (newest started first) is newest closed first too.
        for await (const run of client.workflow.list({ query })) {
          if (run.closeTime) earlier.push({ runId: run.runId, closeTime: run.closeTime });
          if (earlier.length > RUNS_LOOKED_AT) break;
        }
      })(),
    );
    earlier.sort((a, b) => b.closeTime.getTime() - a.closeTime.getTime());
    for (const run of earlier.filter((r) => r.runId !== d.runId).slice(0, RUNS_LOOKED_AT)) {
      const result = await resultOf(run.runId);
      if (result?.outcome !== 'restored') continue;
      lastRestore = { closedAt: run.closeTime.toISOString(), restoredRevision: restoredRevisionOfResult(result), runId: run.runId };
      break;
    }
  }
  return {
    inProgress: false,
    never: false,
    last: {
      status,
      success: status === 'COMPLETED' && outcome === 'restored',
      outcome,
      startedAt: d.startTime.toISOString(),
      closedAt: closedAt.toISOString(),
      durationSeconds: Math.max(0, (closedAt.getTime() - d.startTime.getTime()) / 1000),
    },
    ...(lastRestore ? { lastRestore } : {}),
  };
}
