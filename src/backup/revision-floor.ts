import type { Revision } from '../etcd/revision';
/**
 * The revision below which etcd cannot be, unless it started over: etcd's revision only grows, so it is at least the
 * newest backup's; after a successful recovery that ended after that backup was taken, it is at least the revision
 * that restore left (an older backup, or etcd 3.4 without --bump-revision, can leave it below the newest backup's).
 * Without that figure nothing is concluded. Pure: the health check's data-loss detection and the backup's refusal to
 * store a wiped etcd both use it, so they can never disagree.
 */
export interface FloorBackup {
  key: string;
  /** ISO time the backup's snapshot was taken. */
  created: string;
  revision?: Revision;
}

export interface FloorRecovery {
  /** ISO time the last successful recovery ended. */
  lastSuccessAt?: string;
  /** etcd's revision right after that restore. */
  restoredRevision?: Revision;
  /** For messages: the recovery's workflow id. */
  workflowId?: string;
}

export type RevisionFloor =
  | { revision: Revision; from: 'backup'; backupKey: string }
  | { revision: Revision; from: 'recovery'; endedAt: string; workflowId?: string };

export function revisionFloor(known: { newestBackup?: FloorBackup; recovery?: FloorRecovery }): RevisionFloor | undefined {
  const backup = known.newestBackup;
  if (backup?.revision === undefined) return undefined;
  const restoredAt = known.recovery?.lastSuccessAt;
  const restoredSinceBackup = restoredAt !== undefined && Date.parse(restoredAt) > Date.parse(backup.created);
  if (!restoredSinceBackup) return { revision: backup.revision, from: 'backup', backupKey: backup.key };
  const restored = known.recovery?.restoredRevision;
  if (restored === undefined) return undefined;
  const workflowId = known.recovery?.workflowId;
  return { revision: restored, from: 'recovery', endedAt: restoredAt, ...(workflowId ? { workflowId } : {}) };
}

/** Where a floor comes from, in words: `backup <key>` or `recovery recover-x (ended <time>)`. */
export function describeFloorSource(floor: RevisionFloor): string {
  if (floor.from === 'backup') return `backup ${floor.backupKey}`;
  return `recovery ${floor.workflowId ?? ''}${floor.workflowId ? ' ' : ''}(ended ${floor.endedAt})`;
}
