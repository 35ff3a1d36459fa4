import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  backupsNewestFirst,
  readTrustedBackup,
  UntrustedBackup,
  type TrustedBackup,
  type TrustRules,
} from '../../src/backup/trusted-catalog';
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

export interface SnapshotChoice extends TrustedBackup {
  skipped: { manifestKey: string; reason: string }[];
}

export class SnapshotSelectionError extends Error {
  constructor(
    message: string,
    readonly type: 'MissingSnapshot' | 'CorruptSnapshot' | 'UntrustedSnapshot' | 'MissingSecret',
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
 * "latest": the newest backup whose manifest is believed (src/backup/trusted-catalog.ts: authentic, and stored where
 * its content says) and whose objects the bucket still holds unchanged; the others are passed over and reported. A
 * named key: that backup or a clear refusal — never a silent substitute.
 */
export async function selectSnapshot(
  s3: S3Client,
  rules: TrustRules,
  wanted: string,
  needFiles: NeedFiles,
  passOver: { manifestKey: string; reason: string }[] = [],
): Promise<SnapshotChoice> {
  const { bucket } = rules.storage;
  const cluster = rules.cluster;
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
    let chosen: TrustedBackup;
    try {
      chosen = await readTrustedBackup(s3, rules, manifestKey);
    } catch (err) {
      if (!(err instanceof UntrustedBackup)) throw err;
      if (err.kind === 'missing')
        throw new SnapshotSelectionError(
          `snapshot: no backup "${wanted}" in s3://${bucket}; see \`lifeboat backup list ${cluster}\``,
          'MissingSnapshot',
        );
      throw new SnapshotSelectionError(
        `snapshot: refusing "${wanted}": ${err.reason}`,
        err.kind === 'unverifiable' ? 'MissingSecret' : 'UntrustedSnapshot',
      );
    }
    const problem = await problemsOf(s3, bucket, chosen.manifest, needFiles);
    if (problem)
      throw new SnapshotSelectionError(
        `snapshot: refusing "${wanted}": ${problem}. Pick another with --snapshot, or "latest"`,
        'CorruptSnapshot',
      );
    return { ...chosen, skipped: [] };
  }
  const skipped: SnapshotChoice['skipped'] = [];
  for await (const entry of backupsNewestFirst(s3, rules)) {
    if ('passedOver' in entry) {
      skipped.push(entry.passedOver);
      continue;
    }
    const { manifestKey, manifest } = entry.trusted;
    const known = passOver.find((p) => p.manifestKey === manifestKey);
    if (known) {
      skipped.push(known);
      continue;
    }
    const problem = await problemsOf(s3, bucket, manifest, needFiles);
    if (problem) {
      skipped.push({ manifestKey, reason: problem });
      continue;
    }
    return { ...entry.trusted, skipped };
  }
  throw new SnapshotSelectionError(
    `snapshot: no usable backup of cluster "${cluster}" in s3://${bucket}/${rules.storage.prefix}${skipped.length ? ` (passed over: ${skipped.map((s) => `${s.manifestKey}: ${s.reason}`).join('; ')})` : ''}`,
    'MissingSnapshot',
  );
}
