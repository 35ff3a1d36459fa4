import {
  ApplicationFailure,
  continueAsNew,
  defineQuery,
  executeChild,
  log,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CaptureChangesResult, CaptureProgress, ChainRef } from '../activities/continuous/capture-changes';
import { runMetadata } from '../src/temporal/run-metadata';
import { ACTIVITY_OPTIONS } from './activity-options';
import { backupCluster } from './backup-cluster';
import { captureInputProblems } from './capture-input';
import { captureWorkflowId, wrongWorkflowIdProblem } from './run-ids';
import { labelled } from './run-labels';

/** A chain that could not go on, and the full backup taken so that a new one starts. */
export interface ChainBreak {
  /** When the capture found it. */
  at: string;
  /** no-base: no full backup to start from; compacted: etcd compacted what the chain had not captured; untrusted-tip. */
  reason: Extract<CaptureChangesResult, { outcome: 'needs-backup' }>['reason'];
  message: string;
  /** The chain that broke (absent for no-base). */
  chain?: string;
  /** The full backup taken at once, the new chain's base; absent while it runs or when it failed. */
  backup?: string;
  backupError?: string;
  /** Full backups for a new chain that failed in a row, this one included (sets the wait before the next try). */
  failedBackups?: number;
}

export interface CaptureClusterChangesInput {
  cluster: string;
  /** The chain the previous run wrote to (continue-as-new); absent on the first run and after a break. */
  chain?: ChainRef;
  /** The newest chain break, carried from run to run so the state query still reports it. */
  lastBreak?: ChainBreak;
}

export interface CaptureState {
  cluster: string;
  /** capturing: the watch runs; full-backup: a chain broke and the backup that starts the next one runs. */
  phase: 'capturing' | 'full-backup' | 'waiting-to-retry';
  chain?: ChainRef;
  /** What the previous run of this workflow made durable. */
  lastRun?: CaptureProgress;
  lastBreak?: ChainBreak;
}

/** `temporal workflow query --name captureState`: what the capture is doing, its chain and its newest break. */
export const captureStateQuery = defineQuery<CaptureState>('captureState');

/** Each run captures this long, then continues as new: the history stays a handful of events per half hour. */
export const CAPTURE_RUN_SECONDS = 30 * 60;
/**
 * After a full backup for a new chain failed, the wait before the capture asks again whether a chain can go on: 15 s,
 * doubling to at most 5 minutes. The usual cause is a control plane being recovered (its wiped etcd is refused by the
 * revision floor), and the chain should start as soon as the recovery ends, not minutes later; a long outage still
 * costs one failed backup per 5 minutes, not one per minute.
 */
export function retryAfterFailedBackupSeconds(failedBackups: number): number {
  const n = Number.isInteger(failedBackups) && failedBackups > 0 ? Math.min(failedBackups, 16) : 1;
  return Math.min(15 * 2 ** (n - 1), 300);
}

const capturing = proxyActivities<Activities>(ACTIVITY_OPTIONS.capture);

/**
 * Continuous backups of one cluster (issue 22), as workflow capture-<cluster>, started and stopped by `lifeboat
 * schedule sync` from the config's backup.continuous. Each run is one long capture activity (etcd's watch shipped as
 * segments), then continue-as-new with the chain it wrote to. When no chain can go on (etcd compacted revisions the
 * capture had not seen, the chain's newest segment is not believed, or there is no full backup yet) the gap is said
 * out loud (the activity's log and lifeboat_continuous_chain_breaks_total, the state query here) and a full backup is
 * taken at once as a child, the base of the next chain.
 */
export async function captureClusterChanges(input: CaptureClusterChangesInput): Promise<never> {
  const next = await labelled(
    {
      kind: 'capture',
      input,
      summary: () => (captureInputProblems(input).length ? undefined : `continuous backup of ${input.cluster}`),
      outcome: () => 'continued',
    },
    () => captureRun(input),
  );
  return continueAsNew<typeof captureClusterChanges>(next);
}

async function captureRun(input: CaptureClusterChangesInput): Promise<CaptureClusterChangesInput> {
  const problems = captureInputProblems(input);
  if (problems.length) throw ApplicationFailure.nonRetryable(`invalid capture input: ${problems.join('; ')}`, 'InvalidInput');
  const { cluster } = input;
  const wrongId = wrongWorkflowIdProblem(
    'continuous capture',
    workflowInfo().workflowId,
    captureWorkflowId(cluster),
    '`lifeboat schedule sync` starts it for every cluster with backup.continuous',
  );
  if (wrongId) throw ApplicationFailure.nonRetryable(wrongId, 'InvalidInput');
  const state: CaptureState = { cluster, phase: 'capturing', chain: input.chain, lastBreak: input.lastBreak };
  setHandler(captureStateQuery, () => state);

  const result = await capturing.captureChanges({ cluster, chain: input.chain, runSeconds: CAPTURE_RUN_SECONDS });
  if (result.outcome === 'ran') {
    state.lastRun = result;
    return { cluster, chain: result.chain, ...(input.lastBreak ? { lastBreak: input.lastBreak } : {}) };
  }

  // The previous run was a failed try at this same break when it had no chain to go on with and its backup failed.
  const failedBefore = !input.chain && input.lastBreak?.backupError ? (input.lastBreak.failedBackups ?? 1) : 0;
  const broken: ChainBreak = {
    at: new Date().toISOString(),
    reason: result.reason,
    message: result.message,
    ...(result.chain ? { chain: result.chain.id } : {}),
  };
  state.phase = 'full-backup';
  state.lastBreak = broken;
  if (result.reason === 'no-base') log.warn('continuous backup: no full backup to start a chain from; taking one', { cluster });
  else log.error('continuous backup: chain broken, taking a full backup for a new chain', { cluster, ...broken });
  try {
    const backup = await executeChild(backupCluster, {
      workflowId: `backup-${cluster}-chain-${Date.now()}`,
      args: [
        {
          cluster,
          reason: `continuous backups: ${result.reason === 'no-base' ? 'the first chain needs a base' : `chain break (${result.reason})`}`,
        },
      ],
      // Cancelling the capture (continuous backups turned off) must not cut a backup off half way.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      ...runMetadata({
        what: `full backup of ${cluster} for a new chain of continuous backups`,
        cluster,
        reason: result.message.slice(0, 300),
        startedBy: `the continuous capture ${workflowInfo().workflowId}`,
      }),
    });
    broken.backup = backup.manifestKey;
  } catch (err) {
    broken.backupError = (err as Error).message.slice(0, 500);
    broken.failedBackups = Math.min((Number.isInteger(failedBefore) ? failedBefore : 0) + 1, 1000);
    const wait = retryAfterFailedBackupSeconds(broken.failedBackups);
    state.phase = 'waiting-to-retry';
    log.error('continuous backup: the full backup for a new chain failed; trying again', {
      cluster,
      error: broken.backupError,
      failedInARow: broken.failedBackups,
      retryInSeconds: wait,
    });
    await sleep(wait * 1000);
  }
  return { cluster, lastBreak: broken };
}
