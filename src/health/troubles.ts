import type { HealthReport } from './types';

/**
 * etcd's revision only grows. One below the newest backup's means etcd started over from an empty (or far older)
 * data dir: it answers, and every object is gone. When a recovery restored the cluster after that backup was taken,
 * the floor is the revision that restore left (an older backup, or etcd 3.4 without --bump-revision, can leave it
 * below the newest backup's); without that figure nothing is concluded.
 */
export function etcdDataLost(h: HealthReport): boolean {
  const revision = h.etcd?.revision;
  const backup = h.newestBackup;
  if (revision === undefined || backup?.revision === undefined) return false;
  const restoredAt = h.recovery?.lastSuccessAt;
  const restoredSinceBackup = restoredAt !== undefined && Date.parse(restoredAt) > Date.parse(backup.created);
  const floor = restoredSinceBackup ? h.recovery?.restoredRevision : backup.revision;
  return floor !== undefined && revision < floor;
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
