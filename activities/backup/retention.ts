import { DeleteObjectCommand, DeleteObjectsCommand, type S3Client } from '@aws-sdk/client-s3';
import { chainIdOf } from '../../src/continuous/segment';
import { chainFolder } from '../../src/continuous/segment';
import { listChainIds } from '../../src/continuous/segment-store';
import { listObjects } from '../../src/backup/catalog';
import { clusterBackupPrefix, manifestKeyOf } from '../../src/backup/object-keys';
import { trustedBackups, trustRulesFor } from '../../src/backup/trusted-catalog';
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
  /** Manifests not believed (copied, forged, another cluster's): neither counted nor deleted. */
  passedOver: { manifestKey: string; reason: string }[];
  /** Continuous backups' chains removed with their base (never the newest chain), and how many segments each held. */
  chainsRemoved?: { chain: string; segments: number }[];
}

const ORPHAN_AGE_MS = 24 * 3600_000;
/** A chain written to within this long may be the one a capture still extends: kept whatever its base. */
const CHAIN_QUIET_MS = 24 * 3600_000;

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
      const listed = await listObjects(s3, bucket, clusterBackupPrefix(prefix, cluster.name));
      // Only believed backups count, as keepers or as candidates: a copied or forged manifest must neither push a
      // genuine backup out of keep-last N nor make retention delete the objects it names. It is left alone, and named.
      const { backups, passedOver } = await trustedBackups(s3, trustRulesFor(deps.config, cluster), listed);
      const records = backups.map((b) => ({ key: b.manifestKey, created: b.manifest.created, verified: b.manifest.verified }));
      const decision = decideRetention(records, cluster.backup.retention, new Date(input.now));
      const orphans: string[] = [];
      const manifests = new Set(listed.filter((o) => o.key.endsWith('.manifest.json')).map((o) => o.key));
      for (const o of listed) {
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
        const byKey = new Map(backups.map((b) => [b.manifestKey, b.manifest]));
        for (const d of decision.delete) {
          const m = byKey.get(d.key)!;
          await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: d.key }));
          // A believed manifest names only its own objects (placeProblem), so this deletes nothing of another backup.
          for (const k of [m.snapshot.key, m.controlPlaneFiles?.key])
            if (k) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: k }));
        }
        for (const k of orphans) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: k }));
      }
      // A chain extends its base: it goes with it, in bulk, and only then (segments without their base restore nothing).
      // Not the newest chain, nor one written to within a day, whatever its base: the capture may still be on it.
      const chains = await listChainIds(s3, cluster.storage, cluster.name);
      const keptBases = new Set(decision.keep.map((k) => chainIdOf(k.key)));
      const chainsRemoved: { chain: string; segments: number }[] = [];
      for (const chain of chains.slice(0, -1).filter((c) => !keptBases.has(c))) {
        const segments = await listObjects(s3, bucket, chainFolder(prefix, cluster.name, chain));
        const newest = Math.max(0, ...segments.map((o) => o.lastModified?.getTime() ?? Date.now()));
        if (new Date(input.now).getTime() - newest < CHAIN_QUIET_MS) continue;
        if (!input.dryRun)
          await deleteInBulk(
            s3,
            bucket,
            segments.map((o) => o.key),
          );
        chainsRemoved.push({ chain, segments: segments.length });
      }
      return {
        dryRun: input.dryRun,
        kept: decision.keep,
        deleted: decision.delete,
        orphansRemoved: orphans,
        passedOver,
        ...(chainsRemoved.length ? { chainsRemoved } : {}),
      };
    } finally {
      s3.destroy();
    }
  };
}

/** A thousand keys per request (S3's limit for DeleteObjects): a day of segments goes in a few dozen requests. */
async function deleteInBulk(s3: S3Client, bucket: string, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const res = await s3.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }),
    );
    if (res.Errors?.length)
      throw new Error(`removing a chain's segments: ${res.Errors.length} not removed (${res.Errors[0].Key}: ${res.Errors[0].Message})`);
  }
}
