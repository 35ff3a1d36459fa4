import { z } from 'zod';
import { formatIssues } from '../config/load';
import { isRevision, toRevision } from '../etcd/revision';

/**
 * The JSON manifest written beside each backup, last, after its objects are confirmed in the bucket: a manifest
 * therefore always means a complete backup. Restores and listings read only manifests, and read them through this
 * schema: what comes back from a bucket is as untrusted as any input (a truncated upload, a hand edit, another
 * tool's file), so a manifest that does not match is refused with the key and the field, never half-used.
 * Unknown fields are kept out (stripped), so a newer engine's additions do not break an older reader.
 */
export const MANIFEST_FORMAT = 'lifeboat-backup/v1' as const;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a hex SHA-256');
const size = z.number().int().nonnegative();

/** What one stored object is: enough to verify it end to end and to decode it. */
export const storedObjectSchema = z.object({
  key: z.string().min(1),
  plainSize: size,
  plainSha256: sha256,
  storedSize: size,
  storedSha256: sha256,
  /** The bucket's own checksum of the object (`crc32:…`, or SHA-256 in older manifests; "-N" for multipart): a HEAD request re-checks it cheaply. */
  s3Checksum: z.string().optional(),
  /** The codec of the stored bytes (src/backup/codec.ts), whoever compressed them; absent in the oldest manifests: none. */
  compression: z.enum(['none', 'gzip', 'zstd']).default('none'),
  /** Key id only: the key itself lives with the operator, never in the bucket or in history. */
  encryption: z.object({ algorithm: z.literal('aes-256-gcm-stream'), keyId: z.string().min(1) }).nullable(),
});
export type StoredObject = z.infer<typeof storedObjectSchema>;

export const etcdSnapshotInfoSchema = z.object({
  /**
   * etcd's own hash of the snapshot's key/value data (`snapshot status`). Absent, like `totalKeys`, for a snapshot
   * streamed from etcd as it was taken (direct mode): there was no file to read; etcd's SHA-256 on the stream checked
   * the bytes instead, and a drill reads the restored data.
   */
  hash: z.number().int().optional(),
  /** int64: digits in a string (src/etcd/revision.ts); older manifests hold an exact number. */
  revision: z.unknown().transform((v, ctx) => {
    if (v !== 0 && v !== '0' && (isRevision(v) || (typeof v === 'number' && Number.isSafeInteger(v) && v > 0))) return toRevision(v);
    ctx.addIssue({
      code: 'custom',
      message: 'expected an etcd revision of at least 1: digits in a string (or an exact number below 2^53)',
    });
    return z.NEVER;
  }),
  totalKeys: size.optional(),
  totalSize: size,
  /** Version of the etcd server the snapshot came from. */
  serverVersion: z.string().optional(),
  /** Storage version recorded in the snapshot (3.6+). */
  storageVersion: z.string().optional(),
});
export type EtcdSnapshotInfo = z.infer<typeof etcdSnapshotInfoSchema>;
/** What `snapshot status` reads from a file: the hash and key count are always there. */
export type FileSnapshotInfo = EtcdSnapshotInfo & { hash: number; totalKeys: number };

/** The manifest's tag (src/backup/manifest-auth.ts): HMAC-SHA256 with a key derived from the backup's key. */
export const manifestAuthSchema = z.object({ algorithm: z.literal('hmac-sha256'), keyId: z.string().min(1), tag: z.string().min(1) });
export type ManifestAuth = z.infer<typeof manifestAuthSchema>;

/**
 * A snapshot taken by something else (`etcdctl snapshot save` of the plain kubeadm runbook) and brought in by
 * `lifeboat backup import`: its snapshot is stored and encrypted like any other, but what only a lifeboat backup
 * records (the control-plane archive, the node, the Kubernetes and etcd server versions) is not known.
 */
export const importedSourceSchema = z.object({
  kind: z.literal('imported'),
  /** The S3 key or local file name it was imported from. */
  from: z.string().min(1).max(1024),
  importedAt: z.iso.datetime(),
  /** What `created` was read from: the runbook's `date +%F-%H-%M` in the name (taken as UTC), or the object's time. */
  createdFrom: z.enum(['name', 'object time']),
});

/**
 * A point-in-time restore's snapshot (continuous backups): a chain's base with its segments replayed up to the point
 * in a throwaway etcd, then snapshotted. `created` is the point's time (when its revision was seen), not when it was
 * built, so it sorts among backups by the moment its data is from.
 */
export const pointInTimeSourceSchema = z.object({
  kind: z.literal('point-in-time'),
  /** The base backup's manifest key and the chain replayed on it. */
  base: z.string().min(1),
  chain: z.string().min(1),
  segments: size,
  replayedRevisions: size,
  /** Keys put under a lease (Kubernetes Events), replayed under a lease of this many seconds. */
  leasedKeys: size,
  leaseTtlSeconds: size,
});

export const backupSourceSchema = z.discriminatedUnion('kind', [importedSourceSchema, pointInTimeSourceSchema]);
export type BackupSource = z.infer<typeof backupSourceSchema>;

export const backupManifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  cluster: z.string().min(1),
  /** When etcd took the snapshot (UTC, ISO-8601). */
  created: z.iso.datetime(),
  /** The node the snapshot was taken on; absent for an imported snapshot (not known). */
  node: z.string().optional(),
  etcd: etcdSnapshotInfoSchema,
  kubernetesVersion: z.string().optional(),
  /** Keys per resource under /registry/<resource>/ at the snapshot's revision. */
  resourceCounts: z.record(z.string(), size),
  snapshot: storedObjectSchema,
  controlPlaneFiles: storedObjectSchema
    .extend({
      files: z.array(z.string()),
      /** Files the static-pod manifests reference outside the kubernetes dir, which the archive does not hold. */
      notArchived: z.array(z.string()).optional(),
    })
    .nullable(),
  /** The snapshot was checked by `snapshot status` (or, streamed, by etcd's SHA-256) and its checksum matched end to end. */
  verified: z.boolean(),
  workflow: z.object({ workflowId: z.string(), runId: z.string() }),
  engineVersion: z.string(),
  /** Where the snapshot came from; absent in manifests of lifeboat's own backups (all of them before imports existed). */
  source: backupSourceSchema.optional(),
  /** Absent in manifests of unencrypted backups (no key to sign with) and in those written before manifests were signed. */
  auth: manifestAuthSchema.optional(),
});
export type BackupManifest = z.infer<typeof backupManifestSchema>;

/** A manifest in the bucket that is not one this engine can use; the message names the key and each problem. */
export class ManifestError extends Error {
  constructor(
    readonly key: string,
    readonly problems: string[],
  ) {
    super(`manifest ${key} is not a usable lifeboat backup manifest: ${problems.join('; ')}`);
    this.name = 'ManifestError';
  }
}

/** Parses a manifest's text as read from the bucket. */
export function parseManifest(key: string, text: string): BackupManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(key, [`not JSON (${(err as Error).message})`]);
  }
  const format = (json as { format?: unknown } | null)?.format;
  if (format !== MANIFEST_FORMAT)
    throw new ManifestError(key, [`unknown manifest format ${JSON.stringify(format)} (this engine reads ${MANIFEST_FORMAT})`]);
  const parsed = backupManifestSchema.safeParse(json);
  if (!parsed.success) throw new ManifestError(key, formatIssues(parsed.error.issues));
  return parsed.data;
}

/**
 * The etcd version to pick tools for when restoring on the worker (drills): the server's, or for an imported snapshot
 * (which does not know its server) the storage version etcd's reader found in it. Newer etcd tools restore snapshots
 * of older storage versions, so the latter is a floor, not an exact match.
 */
export function etcdVersionForTools(m: Pick<BackupManifest, 'etcd' | 'source'>): string | undefined {
  return m.etcd.serverVersion ?? (m.source?.kind === 'imported' ? m.etcd.storageVersion : undefined);
}
