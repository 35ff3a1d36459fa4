import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import pino from 'pino';
import { createActivities } from '../../activities';
import type { BackupManifest } from '../../src/backup/manifest';
import { backupObjectKeys } from '../../src/backup/object-keys';
import { decideRetention } from '../../src/backup/retention';
import { parseConfig } from '../../src/config/load';
import { chainIdOf } from '../../src/continuous/segment';
import { minioClient, minioStorage } from '../support/bed';

const BUCKET = 'retention';
const node = {
  name: 'cp1',
  host: '192.0.2.1',
  hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMbq1c5ZQk6pVZr0yQdX3f0b2m5M6mKk0B8w3o3W2w2a',
};

/** A synthetic history in the real bucket: a backup every 8 hours for 90 days, each with its objects and manifest. */
async function seedHistory(cluster: string, now: Date): Promise<{ manifestKey: string; created: string; verified: boolean }[]> {
  const s3 = minioClient();
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
  const records = [];
  for (let i = 0; i < 90 * 3; i++) {
    const created = new Date(now.getTime() - i * 8 * 3600_000 - 600_000).toISOString();
    const keys = backupObjectKeys({
      prefix: 'lifeboat',
      cluster,
      takenAt: created,
      revision: String(10_000 - i),
      compression: 'gzip',
      encrypted: true,
    });
    const verified = i % 17 !== 3; // a few unverified ones, which must never fill a daily/weekly/monthly slot
    const stored = {
      plainSize: 1,
      plainSha256: '0'.repeat(64),
      storedSize: 1,
      storedSha256: '0'.repeat(64),
      compression: 'gzip' as const,
      encryption: { algorithm: 'aes-256-gcm-stream' as const, keyId: 'k1' },
    };
    const manifest: BackupManifest = {
      format: 'lifeboat-backup/v1',
      cluster,
      created,
      node: 'cp1',
      etcd: { hash: 1, revision: String(10_000 - i), totalKeys: 1, totalSize: 1 },
      resourceCounts: {},
      snapshot: { ...stored, key: keys.snapshot },
      controlPlaneFiles: { ...stored, key: keys.controlPlaneFiles, files: [] },
      verified,
      workflow: { workflowId: 'w', runId: 'r' },
      engineVersion: 'test',
    };
    await Promise.all([
      s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: keys.snapshot, Body: 's' })),
      s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: keys.controlPlaneFiles, Body: 'a' })),
      s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: keys.manifest, Body: JSON.stringify(manifest) })),
    ]);
    records.push({ manifestKey: keys.manifest, created, verified });
  }
  s3.destroy();
  return records;
}

describe('retention on a synthetic history in MinIO', () => {
  const now = new Date('2026-11-25T12:00:00Z');
  const retention = { keepLast: 5, daily: 7, weekly: 4, monthly: 6 };
  const config = parseConfig({
    clusters: [
      { name: 'ret', nodes: [node], storage: minioStorage(BUCKET), backup: { retention, allowUnencrypted: true } },
      { name: 'retdry', nodes: [node], storage: minioStorage(BUCKET), backup: { retention, allowUnencrypted: true } },
      { name: 'retchain', nodes: [node], storage: minioStorage(BUCKET), backup: { retention, allowUnencrypted: true } },
    ],
  });
  const activities = createActivities({ config, logger: pino({ level: 'silent' }) });

  it('deletes exactly what the policy gives up, with every object of each deleted backup', async () => {
    const records = await seedHistory('ret', now);
    const expected = decideRetention(
      records.map((r) => ({ key: r.manifestKey, created: r.created, verified: r.verified })),
      retention,
      now,
    );
    expect(expected.delete.length).toBeGreaterThan(200);
    const result = await activities.applyRetention({ cluster: 'ret', now: now.toISOString(), dryRun: false });
    expect(result.deleted.map((d) => d.key).sort()).toEqual(expected.delete.map((d) => d.key).sort());
    const s3 = minioClient();
    const left: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'lifeboat/ret/etcd/', ContinuationToken: token }));
      left.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
    } while (token);
    s3.destroy();
    const keptBases = expected.keep.map((k) => k.key.replace('.manifest.json', '')).sort();
    const leftBases = [...new Set(left.map((k) => k.replace(/\.(db|control-plane\.tar|manifest\.json).*$/, '')))].sort();
    expect(leftBases).toEqual(keptBases);
    expect(left).toHaveLength(keptBases.length * 3); // no orphaned snapshot or archive of a deleted backup
    // The newest verified backup always survives.
    const newestVerified = records.filter((r) => r.verified).sort((a, b) => b.created.localeCompare(a.created))[0];
    expect(keptBases).toContain(newestVerified.manifestKey.replace('.manifest.json', ''));
  });

  it("continuous backups' chains go with their base, in bulk, once quiet for a day; the newest chain stays", async () => {
    // Segments are written now (MinIO's clock), so this history ends now.
    const nowA = new Date();
    const records = await seedHistory('retchain', nowA);
    const decided = decideRetention(
      records.map((r) => ({ key: r.manifestKey, created: r.created, verified: r.verified })),
      retention,
      nowA,
    );
    const gone = chainIdOf(decided.delete[0].key);
    const kept = chainIdOf(records[1].manifestKey); // within keepLast
    const newest = chainIdOf(records[0].manifestKey);
    const s3 = minioClient();
    const seg = (chain: string, i: number) =>
      `lifeboat/retchain/chains/${chain}/${String(i * 2 + 1).padStart(19, '0')}-${String(i * 2 + 2).padStart(19, '0')}.seg.json.zst.enc`;
    // More than one DeleteObjects request's worth (1000) for the chain whose base goes.
    for (let i = 0; i < 1100; i += 50)
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: seg(gone, i + j), Body: 'x' }))),
      );
    for (const chain of [kept, newest]) await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: seg(chain, 0), Body: 'x' }));
    const chainKeys = async () =>
      ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'lifeboat/retchain/chains/', MaxKeys: 5000 }))).Contents ?? [])
        .map((o) => o.Key!)
        .filter((k) => !k.includes(`/${gone}/`) || k === seg(gone, 0));
    // Written to a moment ago: a capture may still be on it, so it stays although its base went.
    const first = await activities.applyRetention({ cluster: 'retchain', now: nowA.toISOString(), dryRun: false });
    expect(first.deleted.map((d) => d.key)).toContain(decided.delete[0].key);
    expect(first.chainsRemoved).toBeUndefined();
    expect(await chainKeys()).toContain(seg(gone, 0));
    // A day and more later it goes, whole; the kept base's chain and the newest chain stay.
    const later = new Date(nowA.getTime() + 2 * 86_400_000);
    const second = await activities.applyRetention({ cluster: 'retchain', now: later.toISOString(), dryRun: false });
    expect(second.chainsRemoved).toContainEqual({ chain: gone, segments: 1100 });
    expect(second.chainsRemoved?.map((c) => c.chain)).not.toContain(newest);
    const left = await chainKeys();
    expect(left).not.toContain(seg(gone, 0));
    expect(left).toEqual(expect.arrayContaining([seg(kept, 0), seg(newest, 0)]));
    s3.destroy();
  });

  it('a dry run lists the same decision and deletes nothing', async () => {
    const records = await seedHistory('retdry', now);
    const result = await activities.applyRetention({ cluster: 'retdry', now: now.toISOString(), dryRun: true });
    expect(result.deleted.length).toBe(
      decideRetention(
        records.map((r) => ({ key: r.manifestKey, created: r.created, verified: r.verified })),
        retention,
        now,
      ).delete.length,
    );
    const s3 = minioClient();
    let count = 0;
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'lifeboat/retdry/etcd/', ContinuationToken: token }));
      count += page.KeyCount ?? 0;
      token = page.NextContinuationToken;
    } while (token);
    s3.destroy();
    expect(count).toBe(records.length * 3);
  });
});
