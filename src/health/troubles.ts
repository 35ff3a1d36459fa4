import type { HealthReport } from './types';

/**
 * etcd's revision only grows. One below the newest backup's means etcd started over from an empty (or far older)
 * data dir: it answers, and every object is gone. A recovery by lifeboat explains it when it ended after that backup
 * was taken (etcd 3.4 restores cannot bump the revision), so it does not count then.
 */
export function etcdDataLost(h: HealthReport): boolean {
  const revision = h.etcd?.revision;
  const backup = h.newestBackup;
  if (revision === undefined || backup?.revision === undefined || revision >= backup.revision) return false;
  const restoredAt = h.recovery?.lastSuccessAt;
  return !(restoredAt !== undefined && Date.parse(restoredAt) > Date.parse(backup.created));
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
