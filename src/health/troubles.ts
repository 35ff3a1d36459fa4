import { revisionFloor } from '../backup/revision-floor';
import type { HealthReport } from './types';

/**
 * etcd's revision only grows. One below the newest backup's means etcd started over from an empty (or far older)
 * data dir: it answers, and every object is gone. When a recovery restored the cluster after that backup was taken,
 * the floor is the revision that restore left (an older backup, or etcd 3.4 without --bump-revision, can leave it
 * below the newest backup's); without that figure nothing is concluded.
 */
export function etcdDataLost(h: HealthReport): boolean {
  const revision = h.etcd?.revision;
  const floor = revisionFloor({ newestBackup: h.newestBackup, recovery: h.recovery });
  return revision !== undefined && floor !== undefined && revision < floor.revision;
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
