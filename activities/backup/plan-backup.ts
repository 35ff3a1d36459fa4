import { GetObjectLockConfigurationCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import type { ClusterConfig } from '../../src/config/schema';
import { loadEncryptionKey } from '../../src/backup/keyring';
import type { Compression } from '../../src/backup/object-keys';
import { findCluster } from '../../src/config/load';
import { describeLocation, s3ClientFor } from '../../src/storage/s3-client';
import { engineVersion } from '../../src/version';
import { nodeTool, nodeToolProbe, type CompressOn } from '../../src/backup/codec';
import { withClusterNode } from '../../src/ssh/session';
import type { ActivityDeps } from '../deps';
import { cancellationSignal } from '../heartbeat';

export interface BackupPlan {
  cluster: string;
  node: string;
  bucket: string;
  prefix: string;
  location: string;
  compression: Compression;
  /**
   * Where the snapshot is compressed: on the node before SSH when the node has the codec's tool (zstd, gzip), else on
   * the worker (direct mode, or a node without it: `compressionNote` says which and why). Absent in histories from
   * before node compression: the worker.
   */
  compressOn?: CompressOn;
  compressionNote?: string;
  /** Key id only; null when the operator chose allowUnencrypted. */
  encryptionKeyId: string | null;
  /**
   * Direct mode: the snapshot is read from etcd's snapshot stream and uploaded as it arrives (streamSnapshot), in one
   * step. Absent in plans recorded before streaming (and in SSH mode): a file is taken, then uploaded.
   */
  streamFromEtcd?: true;
  /**
   * SSH mode: the node's `snapshot save` is read as it grows and uploaded meanwhile (streamWhileSaving), falling back
   * to the file first when it cannot. Absent in plans recorded before it: a file is taken, then uploaded.
   */
  streamWhileSaving?: true;
  /** Recorded in the manifest; read here because workflow code cannot read files. */
  engineVersion: string;
}

/**
 * Checks, before anything touches the node, what would otherwise fail half-way: the encryption key is readable and
 * well-formed, and the bucket exists and accepts our credentials. Both are permanent problems with a clear fix.
 */
export function planBackup(deps: ActivityDeps) {
  return async (input: { cluster: string }): Promise<BackupPlan> => {
    const cluster = findCluster(deps.config, input.cluster);
    const keyId = cluster.backup.encryptionKey ?? null;
    if (keyId) await loadEncryptionKey(deps.config, keyId);
    else if (!cluster.backup.allowUnencrypted) {
      throw ApplicationFailure.nonRetryable(
        `no encryption key set. A snapshot holds every Secret of the cluster and the PKI archive holds the cluster's private keys: ` +
          `set clusters[].backup.encryptionKey to a key id under encryptionKeys (generate one with \`openssl rand -base64 32 > key\`), ` +
          'or set backup.allowUnencrypted: true to store them in plain text.',
        'MissingEncryptionKey',
      );
    }
    if (cluster.etcd.direct) await checkDirectMode(cluster.name, cluster.etcd.direct);
    const where = await whereToCompress(deps, cluster);
    const s3 = await s3ClientFor(cluster.storage, `clusters.${cluster.name}.storage`);
    try {
      await s3.send(new HeadBucketCommand({ Bucket: cluster.storage.bucket })).catch((err: unknown) => {
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        const where = describeLocation(cluster.storage);
        if (status === 404)
          throw ApplicationFailure.nonRetryable(`bucket ${where} does not exist; create it or fix storage.bucket`, 'BucketMissing');
        if (status === 403 || status === 401) {
          throw ApplicationFailure.nonRetryable(
            `access to ${where} denied; check storage.credentials and the bucket policy (s3:ListBucket, s3:PutObject, s3:GetObject, s3:DeleteObject, s3:AbortMultipartUpload)`,
            'BucketAccessDenied',
          );
        }
        throw err;
      });
      if (cluster.storage.objectLock) await requireObjectLock(s3, cluster.name, cluster.storage.bucket);
    } finally {
      s3.destroy();
    }
    return {
      cluster: cluster.name,
      node: cluster.nodes[0].name,
      bucket: cluster.storage.bucket,
      prefix: cluster.storage.prefix,
      location: describeLocation(cluster.storage),
      compression: cluster.backup.compression,
      ...where,
      encryptionKeyId: keyId,
      ...(cluster.etcd.direct
        ? { streamFromEtcd: true as const }
        : cluster.backup.streamWhileSaving
          ? { streamWhileSaving: true as const }
          : {}),
      engineVersion: engineVersion(),
    };
  };
}

/**
 * Compression runs where the bytes are born: on the node, so SSH, the worker's encryption, the upload and the bucket
 * all handle the compressed bytes. A node without the codec's tool (or one where it does not run) is not refused: the
 * worker compresses instead, with the same codec (the stored bytes are the same format), and the plan says so.
 */
async function whereToCompress(deps: ActivityDeps, cluster: ClusterConfig): Promise<{ compressOn: CompressOn; compressionNote?: string }> {
  const codec = cluster.backup.compression;
  const probe = nodeToolProbe(codec);
  if (!probe) return { compressOn: 'worker' };
  if (cluster.etcd.direct) return { compressOn: 'worker' }; // the worker reads etcd itself: the bytes are born there
  const node = cluster.nodes[0].name;
  const r = await withClusterNode(deps.config, cluster.name, node, (s) => s.run(probe, { allowFailure: true }), {
    signal: cancellationSignal(),
  });
  if (r.code === 0) return { compressOn: 'node' };
  const why = (r.stderr || r.stdout).trim().split('\n').pop() || `exit code ${r.code}`;
  return {
    compressOn: 'worker',
    compressionNote: `${nodeTool(codec)} does not run on node "${node}" (${why}): ${codec} on the worker instead, so SSH carries the snapshot uncompressed; install ${nodeTool(codec)} on the node to compress there`,
  };
}

/** Object-lock retention can only be set in a bucket created with Object Lock: say so before uploading anything. */
async function requireObjectLock(s3: import('@aws-sdk/client-s3').S3Client, cluster: string, bucket: string): Promise<void> {
  const enabled = await s3
    .send(new GetObjectLockConfigurationCommand({ Bucket: bucket }))
    .then((r) => r.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled')
    .catch((err: { name?: string }) => {
      if (/ObjectLockConfiguration/.test(err.name ?? '')) return false;
      throw err;
    });
  if (!enabled) {
    throw ApplicationFailure.nonRetryable(
      `storage.objectLock is set but bucket ${bucket} has no Object Lock; create the bucket with Object Lock enabled (it cannot be turned on later for existing buckets) or remove storage.objectLock`,
      'ObjectLockUnavailable',
    );
  }
}

/** Direct mode runs etcdctl on the worker with certificates on the worker: check both are there before starting. */
async function checkDirectMode(cluster: string, d: NonNullable<ClusterConfig['etcd']['direct']>): Promise<void> {
  for (const field of ['caFile', 'certFile', 'keyFile'] as const) {
    await access(d[field], constants.R_OK).catch((err: NodeJS.ErrnoException) => {
      throw ApplicationFailure.nonRetryable(
        `etcd.direct.${field} ${d[field]} is not readable on the worker (${err.code}); copy the etcd client certificate there or fix the path`,
        'DirectModeMisconfigured',
      );
    });
  }
  const found = d.etcdctl.startsWith('/')
    ? await access(d.etcdctl, constants.X_OK).then(
        () => true,
        () => false,
      )
    : await onPath(d.etcdctl);
  if (!found) {
    throw ApplicationFailure.nonRetryable(
      `etcd.direct.etcdctl "${d.etcdctl}" is not an executable on the worker; install etcdctl there (the image ships it) or set the path`,
      'DirectModeMisconfigured',
    );
  }
}

async function onPath(name: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    if (
      await access(`${dir}/${name}`, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return true;
  }
  return false;
}
