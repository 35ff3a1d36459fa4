import { revisionBumpOf } from '../recovery/plan';
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
    /** etcd's revision right after a restore (snapshot revision, plus the bump when one was applied). */
    restoredRevision?: number;
  };
  /** No recover-<cluster> workflow exists. */
  never: boolean;
}

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
 * a termination is not a successful recovery). Rejects when Temporal cannot be asked.
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
  let outcome: string | undefined;
  let restoredRevision: number | undefined;
  if (status === 'COMPLETED') {
    // Not caught: a completed run whose result cannot be read might be a restore, and a restore since the newest
    // backup is what explains a revision below it; guessing "no restore" would make intact data look lost.
    const result = (await within(
      timeoutMs,
      `result of ${workflowId}`,
      client.workflow.getHandle(workflowId, d.runId, { followRuns: false }).result(),
    )) as
      | { outcome?: string; plan?: { snapshot?: { revision?: number }; tool?: { bumpRevision?: boolean }; revisionBump?: number } }
      | undefined;
    outcome = result?.outcome;
    const revision = result?.plan?.snapshot?.revision;
    // What etcd's revision was right after that restore: the snapshot's, moved forward by --bump-revision if used.
    if (outcome === 'restored' && typeof revision === 'number')
      restoredRevision = revision + (result?.plan?.tool?.bumpRevision ? revisionBumpOf(result.plan) : 0);
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
      ...(restoredRevision !== undefined ? { restoredRevision } : {}),
    },
  };
}
