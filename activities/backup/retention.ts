import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { listBackups, listObjects } from '../../src/backup/catalog';
import { clusterBackupPrefix, manifestKeyOf } from '../../src/backup/object-keys';
import { decideRetention } from '../../src/backup/retention';
import { findCluster } from '../../src/config/load';
import { s3ClientFor } from '../../src/storage/s3-client';
import type { ActivityDeps } from '../deps';

export interface RetentionInput {
  cluster: string;
  /** The workflow's clock, so a replay or a dry run decides the same way. */
  now: string;
  dryRun: boolean;
}

export interface RetentionResult {
  dryRun: boolean;
  kept: { key: string; reasons: string[] }[];
  deleted: { key: string; created: string }[];
  /** Objects with no manifest older than a day: leftovers of failed runs. */
  orphansRemoved: string[];
}

const ORPHAN_AGE_MS = 24 * 3600_000;

/**
 * Prunes a cluster's backups by its policy (keep-last N plus daily/weekly/monthly). A backup's manifest is deleted
 * first, so it leaves listings at once; its objects follow, and any left behind by a crash are swept as orphans.
 */
export function applyRetention(deps: ActivityDeps) {
  return async (input: RetentionInput): Promise<RetentionResult> => {
    const cluster = findCluster(deps.config, input.cluster);
    const { bucket, prefix } = cluster.storage;
    const s3 = await s3ClientFor(cluster.storage);
    try {
      const entries = await listBackups(s3, bucket, prefix, cluster.name);
      const records = entries.map((e) => ({
        key: e.manifestKey,
        created: e.manifest?.created ?? 'unknown',
        verified: e.manifest?.verified ?? false,
      }));
      const decision = decideRetention(records, cluster.backup.retention, new Date(input.now));
      const orphans: string[] = [];
      const manifests = new Set(entries.map((e) => e.manifestKey));
      for (const o of await listObjects(s3, bucket, clusterBackupPrefix(prefix, cluster.name))) {
        if (o.key.endsWith('.manifest.json')) continue;
        let manifestKey: string;
        try {
          manifestKey = manifestKeyOf(o.key);
        } catch {
          continue; // not ours: leave it alone
        }
        const old = o.lastModified && new Date(input.now).getTime() - o.lastModified.getTime() > ORPHAN_AGE_MS;
        if (!manifests.has(manifestKey) && old) orphans.push(o.key);
      }
      if (!input.dryRun) {
        const byKey = new Map(entries.map((e) => [e.manifestKey, e.manifest]));
        for (const d of decision.delete) {
          const m = byKey.get(d.key);
          await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: d.key }));
          for (const k of [m?.snapshot.key, m?.controlPlaneFiles?.key])
            if (k) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: k }));
        }
        for (const k of orphans) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: k }));
      }
      return { dryRun: input.dryRun, kept: decision.keep, deleted: decision.delete, orphansRemoved: orphans };
    } finally {
      s3.destroy();
    }
  };
}
