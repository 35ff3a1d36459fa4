import { listObjects } from '../backup/catalog';
import { newestTrustedBackup } from '../backup/trusted-catalog';
import { clusterBackupPrefix } from '../backup/object-keys';
import type { ClusterConfig } from '../config/schema';
import { readBucket } from './bucket-read';
import type { HealthReport } from './types';
import { lastPassedDrill } from '../drill/report';

/**
 * The newest backup of a cluster whose manifest can be believed (a backup without a manifest is not a backup; one
 * whose tag does not match is passed over and named). Rejects
 * on a bucket error or after `timeoutMs`; resolves undefined when the cluster has no backup.
 */
export async function newestBackup(
  cluster: Pick<ClusterConfig, 'name' | 'storage' | 'backup'>,
  loadKey: (keyId: string) => Promise<Buffer>,
  timeoutMs: number,
  now: Date,
): Promise<HealthReport['newestBackup']> {
  const storage = cluster.storage;
  return readBucket(storage, timeoutMs, async (s3) => {
    const objects = await listObjects(s3, storage.bucket, clusterBackupPrefix(storage.prefix, cluster.name));
    // Drill reports live beside the backups: the same listing finds the newest passed one (survives a restart).
    const rules = { storage, cluster: cluster.name, signsManifests: Boolean(cluster.backup.encryptionKey), loadKey };
    const drill = await lastPassedDrill(s3, rules, objects);
    const lastPassedDrillAt = drill ? { lastPassedDrillAt: drill.finished } : {};
    // Only a manifest that can be believed: its revision decides whether etcd lost its data.
    const found = await newestTrustedBackup(s3, rules, objects);
    const passedOver = found.passedOver.map((p) => `${p.manifestKey}: ${p.reason}`);
    if (found.newest) {
      const manifest = found.newest.manifest;
      const created = new Date(manifest.created);
      return {
        key: manifest.snapshot.key,
        created: created.toISOString(),
        ageSeconds: Math.max(0, Math.round((now.getTime() - created.getTime()) / 1000)),
        sizeBytes: manifest.snapshot.storedSize,
        revision: manifest.etcd.revision,
        ...lastPassedDrillAt,
        ...(passedOver.length ? { passedOver: passedOver.slice(0, 5) } : {}),
      };
    }
    return undefined;
  });
}
