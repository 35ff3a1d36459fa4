import { listObjects, readManifest } from '../backup/catalog';
import { clusterBackupPrefix } from '../backup/object-keys';
import type { StorageConfig } from '../config/schema';
import { describeLocation, s3ClientFor } from '../storage/s3-client';
import type { HealthReport } from './types';
import { lastPassedDrill } from '../drill/report';

/**
 * The newest backup of a cluster, from its manifests in the bucket (a backup without a manifest is not a backup).
 * Object keys sort by time, so only the newest manifest is read (the next ones only if it is unreadable). Rejects
 * on a bucket error or after `timeoutMs`; resolves undefined when the cluster has no backup.
 */
export async function newestBackup(
  storage: StorageConfig,
  cluster: string,
  timeoutMs: number,
  now: Date,
): Promise<HealthReport['newestBackup']> {
  const s3 = await s3ClientFor(storage);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer from ${describeLocation(storage)} within ${Math.round(timeoutMs / 1000)} s`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([
      (async () => {
        const objects = await listObjects(s3, storage.bucket, clusterBackupPrefix(storage.prefix, cluster));
        const manifests = objects.filter((o) => o.key.endsWith('.manifest.json')).sort((a, b) => b.key.localeCompare(a.key));
        // Drill reports live beside the backups: the same listing finds the newest passed one (survives a restart).
        const drill = await lastPassedDrill(s3, storage.bucket, objects);
        const lastPassedDrillAt = drill ? { lastPassedDrillAt: drill.finished } : {};
        for (const m of manifests.slice(0, 3)) {
          try {
            const manifest = await readManifest(s3, storage.bucket, m.key);
            const created = new Date(manifest.created);
            return {
              key: manifest.snapshot.key,
              created: created.toISOString(),
              ageSeconds: Math.max(0, Math.round((now.getTime() - created.getTime()) / 1000)),
              sizeBytes: manifest.snapshot.storedSize,
              revision: manifest.etcd.revision,
              ...lastPassedDrillAt,
            };
          } catch {
            // unreadable manifest: the next one
          }
        }
        return undefined;
      })(),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
    s3.destroy();
  }
}
