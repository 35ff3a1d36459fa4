import { revisionBelow, type Revision } from '../../src/etcd/revision';
import { ApplicationFailure } from '@temporalio/common';
import { newestTrustedBackup, trustRulesFor } from '../../src/backup/trusted-catalog';
import { describeFloorSource, revisionFloor, type FloorBackup, type RevisionFloor } from '../../src/backup/revision-floor';
import type { ClusterConfig } from '../../src/config/schema';
import { recoveryState } from '../../src/health/recovery-state';
import { durationMs } from '../../src/schedules/backup-schedules';
import { s3ClientFor } from '../../src/storage/s3-client';
import type { ActivityDeps } from '../deps';

/** A floor a person chose to override (`allowRevisionRegression`), as the backup's result records it. */
export interface RevisionRegressionAllowed {
  floor: Revision;
  from: string;
}

/** The floor's backup: the newest one whose manifest can be believed (src/backup/trusted-catalog.ts). */
export async function newestAuthenticBackup(
  deps: ActivityDeps,
  cluster: ClusterConfig,
): Promise<(FloorBackup & { passedOver: string[] }) | undefined> {
  const s3 = await s3ClientFor(cluster.storage);
  try {
    const found = await newestTrustedBackup(s3, trustRulesFor(deps.config, cluster));
    const passedOver = found.passedOver.map((p) => `${p.manifestKey}: ${p.reason}`);
    if (!found.newest) return undefined;
    const m = found.newest.manifest;
    return { key: m.snapshot.key, created: m.created, revision: m.etcd.revision, passedOver };
  } finally {
    s3.destroy();
  }
}

/**
 * etcd's revision only grows: a snapshot below the floor (the newest believable backup's revision, or what the last
 * successful recovery since then left) means etcd started over from empty or older data, and storing it would make
 * the wiped cluster the newest backup (what "latest" restores, what the health check compares with, what retention
 * keeps in place of the good ones). Resolves undefined when the snapshot is at or above the floor (or there is none);
 * with `allow`, resolves the floor it overrode; otherwise throws: RevisionRegression (non-retryable) below the floor,
 * a retryable failure when the floor cannot be known (Temporal does not answer, or a recovery is running) and the
 * snapshot is below the backup's.
 * `discard` removes this run's snapshot file first, whenever it throws.
 */
export async function checkRevisionFloor(
  deps: ActivityDeps,
  cluster: ClusterConfig,
  revision: Revision,
  allow: boolean,
  discard: () => Promise<void>,
): Promise<RevisionRegressionAllowed | undefined> {
  const backup = await newestAuthenticBackup(deps, cluster);
  if (backup?.passedOver.length)
    deps.logger.warn({ cluster: cluster.name, passedOver: backup.passedOver }, 'revision floor: manifests passed over (not believable)');
  if (backup?.revision === undefined) return undefined;
  const timeoutMs = Math.max(durationMs(cluster.health.timeout), 5000);
  const workflowId = `recover-${cluster.name}`;
  let floor: RevisionFloor | undefined;
  try {
    if (!deps.client) throw new Error('this worker has no Temporal client to ask about recover-<cluster>');
    const state = await recoveryState(deps.client, cluster.name, timeoutMs);
    // A recovery that is restoring right now may be what moved the revision: known only once it has ended.
    if (state.inProgress) throw new Error(`${workflowId} is running; back up once it has ended`, { cause: 'running' });
    const last = state.lastRestore;
    floor = revisionFloor({
      newestBackup: backup,
      recovery: last ? { lastSuccessAt: last.closedAt, restoredRevision: last.restoredRevision, workflowId } : undefined,
    });
  } catch (err) {
    if (!revisionBelow(revision, backup.revision)) return undefined;
    const message = `the snapshot's etcd revision ${revision} is below ${backup.revision} of backup ${backup.key}, and whether a recovery since explains it cannot be known now: ${(err as Error).cause === 'running' ? '' : 'Temporal cannot be asked: '}${(err as Error).message}. Nothing was stored and the existing backups are untouched (the step is retried a few times).`;
    if (allow) {
      deps.logger.warn({ cluster: cluster.name, revision, floor: backup.revision }, 'revision regression allowed by the operator');
      return { floor: backup.revision, from: `backup ${backup.key}` };
    }
    await discard();
    throw ApplicationFailure.retryable(message, 'RevisionFloorUnknown');
  }
  if (floor === undefined || !revisionBelow(revision, floor.revision)) return undefined;
  const from = describeFloorSource(floor);
  if (allow) {
    deps.logger.warn({ cluster: cluster.name, revision, floor: floor.revision, from }, 'revision regression allowed by the operator');
    return { floor: floor.revision, from };
  }
  await discard();
  throw ApplicationFailure.nonRetryable(
    `the snapshot's etcd revision ${revision} is below ${floor.revision}, from ${from}; etcd only counts up, so it appears to have started over from empty or older data. Nothing was stored and the existing backups are untouched. If the data was lost, restore it: lifeboat restore ${cluster.name}. If etcd was reset on purpose, take a backup with the override: lifeboat backup now ${cluster.name} --allow-revision-regression (allowRevisionRegression: true).`,
    'RevisionRegression',
  );
}

/**
 * What a floor check running beside a stream refused with, or undefined when it did not refuse: a stream stopped by
 * the refusal reports it rather than its own broken-stream error.
 */
export function refusalOf(floor: Promise<unknown>): Promise<unknown> {
  return floor.then(
    () => undefined,
    (refusal: unknown) => refusal,
  );
}
