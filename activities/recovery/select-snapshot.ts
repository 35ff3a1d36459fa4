import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { listBackups, readManifest } from '../../src/backup/catalog';
import type { BackupManifest, StoredObject } from '../../src/backup/manifest';
import { manifestKeyOf } from '../../src/backup/object-keys';
import { parseChecksum, reportedChecksum } from '../../src/storage/checksum';

/** What the bucket says about a stored object, compared with its manifest; undefined when they agree. */
export async function storedObjectProblem(s3: S3Client, bucket: string, obj: StoredObject): Promise<string | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: obj.key, ChecksumMode: 'ENABLED' }));
    if (head.ContentLength !== obj.storedSize) return `${obj.key}: size ${head.ContentLength}, manifest says ${obj.storedSize}`;
    // The manifest holds the bucket's checksum only where the bucket confirmed it at backup time, so any difference,
    // including a missing one, means the object was rewritten since.
    if (obj.s3Checksum) {
      const recorded = parseChecksum(obj.s3Checksum);
      const reported = reportedChecksum(head, recorded.algorithm);
      if (reported !== recorded.value)
        return `${obj.key}: ${recorded.algorithm} checksum ${reported ?? '(none)'}, manifest says ${recorded.value} (rewritten since the backup)`;
    }
    return undefined;
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404) return `${obj.key}: missing from the bucket`;
    throw err;
  }
}

export interface SnapshotChoice {
  manifestKey: string;
  manifest: BackupManifest;
  skipped: { manifestKey: string; reason: string }[];
}

export class SnapshotSelectionError extends Error {
  constructor(
    message: string,
    readonly type: 'MissingSnapshot' | 'CorruptSnapshot',
  ) {
    super(message);
    this.name = 'SnapshotSelectionError';
  }
}

/**
 * Whether the control-plane archive must be there: a recovery onto a new node needs it; a drill does too, except for
 * an imported snapshot, which never had one (the drill says what it could not check instead).
 */
export type NeedFiles = boolean | 'unless-imported';

async function problemsOf(s3: S3Client, bucket: string, m: BackupManifest, need: NeedFiles): Promise<string | undefined> {
  const needFiles = need === 'unless-imported' ? m.source?.kind !== 'imported' : need;
  if (!m.verified) return 'not verified at backup time';
  for (const obj of [m.snapshot, ...(needFiles && m.controlPlaneFiles ? [m.controlPlaneFiles] : [])]) {
    const p = await storedObjectProblem(s3, bucket, obj);
    if (p) return p;
  }
  if (needFiles && !m.controlPlaneFiles) return 'has no control-plane files (needed to rebuild a node)';
  return undefined;
}

/**
 * "latest": the newest backup whose manifest reads and whose objects the bucket still holds unchanged; corrupt ones
 * are passed over and reported. A named key: that backup or a clear refusal — never a silent substitute.
 */
export async function selectSnapshot(
  s3: S3Client,
  bucket: string,
  prefix: string,
  cluster: string,
  wanted: string,
  needFiles: NeedFiles,
  passOver: { manifestKey: string; reason: string }[] = [],
): Promise<SnapshotChoice> {
  if (wanted !== 'latest') {
    let manifestKey: string;
    try {
      manifestKey = manifestKeyOf(wanted);
    } catch {
      throw new SnapshotSelectionError(
        `snapshot: "${wanted}" is not a backup key; copy one from \`lifeboat backup list ${cluster}\``,
        'MissingSnapshot',
      );
    }
    let manifest: BackupManifest;
    try {
      manifest = await readManifest(s3, bucket, manifestKey);
    } catch (err) {
      throw new SnapshotSelectionError(
        `snapshot: no backup "${wanted}" in s3://${bucket} (${(err as Error).message}); see \`lifeboat backup list ${cluster}\``,
        'MissingSnapshot',
      );
    }
    if (manifest.cluster !== cluster)
      throw new SnapshotSelectionError(
        `snapshot: "${wanted}" is a backup of cluster "${manifest.cluster}", not "${cluster}"`,
        'MissingSnapshot',
      );
    const problem = await problemsOf(s3, bucket, manifest, needFiles);
    if (problem)
      throw new SnapshotSelectionError(
        `snapshot: refusing "${wanted}": ${problem}. Pick another with --snapshot, or "latest"`,
        'CorruptSnapshot',
      );
    return { manifestKey, manifest, skipped: [] };
  }
  const skipped: SnapshotChoice['skipped'] = [];
  for (const entry of await listBackups(s3, bucket, prefix, cluster)) {
    const known = passOver.find((p) => p.manifestKey === entry.manifestKey);
    if (known) {
      skipped.push(known);
      continue;
    }
    if (!entry.manifest) {
      skipped.push({ manifestKey: entry.manifestKey, reason: `manifest unreadable: ${entry.problem}` });
      continue;
    }
    const problem = await problemsOf(s3, bucket, entry.manifest, needFiles);
    if (problem) {
      skipped.push({ manifestKey: entry.manifestKey, reason: problem });
      continue;
    }
    return { manifestKey: entry.manifestKey, manifest: entry.manifest, skipped };
  }
  throw new SnapshotSelectionError(
    `snapshot: no usable backup of cluster "${cluster}" in s3://${bucket}/${prefix}${skipped.length ? ` (passed over: ${skipped.map((s) => `${s.manifestKey}: ${s.reason}`).join('; ')})` : ''}`,
    'MissingSnapshot',
  );
}
