import { revisionBelow } from '../etcd/revision';
import { revisionFloor } from '../backup/revision-floor';
import type { HealthReport } from './types';

/**
 * etcd's revision only grows. One below the newest backup's means etcd started over from an empty (or far older)
 * data dir: it answers, and every object is gone. When a recovery restored the cluster after that backup was taken,
 * the floor is the revision that restore left (an older backup, or etcd 3.4 without --bump-revision, can leave it
 * below the newest backup's); without that figure, or without the recovery state, nothing is concluded.
 */
export function etcdDataLost(h: HealthReport): boolean {
  const revision = h.etcd?.revision;
  // Whether a restore since the backup explains a lower revision is Temporal's to say: unread, no verdict (etcdDataUnchecked).
  if (revision === undefined || h.unread?.recovery) return false;
  const floor = revisionFloor({ newestBackup: h.newestBackup, recovery: h.recovery });
  return floor !== undefined && revisionBelow(revision, floor.revision);
}

/**
 * Why a probe that found every component up still cannot say etcd has its data, or undefined when it can. A bucket
 * or a Temporal that did not answer in time is not evidence of health: an etcd that restarted empty answers like a
 * healthy one, and only the revision floor tells them apart.
 */
export function etcdDataUnchecked(h: HealthReport): string | undefined {
  if (!h.components.find((c) => c.component === 'etcd')?.up || etcdDataLost(h)) return undefined;
  if (h.unread?.newestBackup) return `the newest backup could not be read (${h.unread.newestBackup})`;
  if (h.newestBackup?.revision === undefined) return undefined; // no backup to compare with: nothing to restore either
  if (h.etcd?.revision === undefined) return "etcd's revision could not be read";
  // Below the backup's, only a restore since it can explain the revision: without the recovery state, no verdict.
  if (h.unread?.recovery && revisionBelow(h.etcd.revision, h.newestBackup.revision))
    return `the recovery state could not be read (${h.unread.recovery})`;
  return undefined;
}

/**
 * What is wrong according to one probe: the components that did not answer, and "etcd-data" when etcd answers
 * without its data. Empty means healthy. Pure: the response workflow decides with it.
 */
export function troublesOf(h: HealthReport): string[] {
  const troubles: string[] = h.components.filter((c) => !c.up).map((c) => c.component);
  if (etcdDataLost(h)) troubles.push('etcd-data');
  return troubles;
}
