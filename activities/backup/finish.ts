import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import type { BackupManifest } from '../../src/backup/manifest';
import { findCluster } from '../../src/config/load';
import { s3ClientFor } from '../../src/storage/s3-client';
import { parseChecksum, reportedChecksum } from '../../src/storage/checksum';
import { objectLockFor, objectLockParams } from '../../src/storage/upload-stream';
import { loadEncryptionKey } from '../../src/backup/keyring';
import { signManifest } from '../../src/backup/manifest-auth';
import { readTrustedBackup, trustRulesFor, UntrustedBackup } from '../../src/backup/trusted-catalog';
import type { ActivityDeps } from '../deps';
import { cancellationSignal } from '../heartbeat';
import { withSnapshotHost, type SnapshotSource } from '../../src/backup/snapshot-host';

export interface ObjectToConfirm {
  key: string;
  storedSize: number;
  s3Checksum: string;
}

export interface ConfirmedObject {
  key: string;
  size: number;
  /** 'crc32' or 'sha256' when the store's own checksum matched ours; 'size' when the store reports none. */
  checkedBy: 'crc32' | 'sha256' | 'size';
}

/** Reads back, from the bucket, the size and checksum of what was stored, before anything on the node is removed. */
export function confirmObjects(deps: ActivityDeps) {
  return async (input: { cluster: string; objects: ObjectToConfirm[] }): Promise<ConfirmedObject[]> => {
    const cluster = findCluster(deps.config, input.cluster);
    const s3 = await s3ClientFor(cluster.storage);
    try {
      return await Promise.all(
        input.objects.map(async (o): Promise<ConfirmedObject> => {
          const head = await s3.send(new HeadObjectCommand({ Bucket: cluster.storage.bucket, Key: o.key, ChecksumMode: 'ENABLED' }));
          const ours = parseChecksum(o.s3Checksum);
          const theirs = reportedChecksum(head, ours.algorithm);
          const problem =
            head.ContentLength !== o.storedSize
              ? `size ${head.ContentLength} instead of ${o.storedSize}`
              : theirs && theirs !== ours.value
                ? `${ours.algorithm} checksum ${theirs} instead of ${ours.value}`
                : undefined;
          if (problem) {
            throw ApplicationFailure.nonRetryable(`s3://${cluster.storage.bucket}/${o.key} holds ${problem}`, 'StoredObjectMismatch');
          }
          return { key: o.key, size: o.storedSize, checkedBy: theirs ? (ours.algorithm === 'CRC32' ? 'crc32' : 'sha256') : 'size' };
        }),
      );
    } finally {
      s3.destroy();
    }
  };
}

/** Written last: a manifest in the bucket always stands for a complete, confirmed backup. */
export function writeManifest(deps: ActivityDeps) {
  return async (input: { cluster: string; key: string; manifest: BackupManifest }): Promise<void> => {
    const cluster = findCluster(deps.config, input.cluster);
    // Signed with the backup's own key, resolved here: the workflow (and its history) never holds it.
    const keyId = input.manifest.snapshot.encryption?.keyId;
    const manifest = keyId ? signManifest(input.manifest, await loadEncryptionKey(deps.config, keyId), keyId) : input.manifest;
    const s3 = await s3ClientFor(cluster.storage);
    try {
      await s3.send(
        new PutObjectCommand({
          Bucket: cluster.storage.bucket,
          Key: input.key,
          Body: JSON.stringify(manifest, null, 2),
          ContentType: 'application/json',
          ChecksumAlgorithm: 'SHA256',
          ...objectLockParams(objectLockFor(cluster.storage)),
        }),
      );
      // Read back as every reader will read it (authentic, parsed, stored where its content says): a manifest that no
      // reader would believe is no backup, so the run fails rather than "succeed" with a backup nothing can restore.
      await readTrustedBackup(s3, trustRulesFor(deps.config, cluster), input.key).catch(async (err: unknown) => {
        if (!(err instanceof UntrustedBackup)) throw err;
        await s3.send(new DeleteObjectCommand({ Bucket: cluster.storage.bucket, Key: input.key })).catch(() => undefined);
        throw ApplicationFailure.nonRetryable(
          `the manifest written to ${input.key} does not read back as a usable backup (${err.reason}); it was removed and the backup failed`,
          'ManifestUnreadable',
        );
      });
    } finally {
      s3.destroy();
    }
  };
}

/** Removes this run's objects that never got a manifest (a backup that failed after uploading). */
export function discardIncompleteBackup(deps: ActivityDeps) {
  return async (input: { cluster: string; keys: string[] }): Promise<string[]> => {
    const cluster = findCluster(deps.config, input.cluster);
    const s3 = await s3ClientFor(cluster.storage);
    try {
      for (const key of input.keys) await s3.send(new DeleteObjectCommand({ Bucket: cluster.storage.bucket, Key: key }));
      return input.keys;
    } finally {
      s3.destroy();
    }
  };
}

/** Removes the run's folder (its snapshot copy) where the snapshot was taken, once the backup is confirmed in the bucket. */
export function removeNodeRunFiles(deps: ActivityDeps) {
  return (input: { cluster: string; node: string; runDir: string; source?: SnapshotSource }): Promise<void> =>
    withSnapshotHost(
      deps.config,
      input.cluster,
      input.node,
      input.source ?? 'node',
      async (host) => {
        const base = `${host.workDir}/backups/`;
        if (!input.runDir.startsWith(base) || input.runDir.slice(base.length).includes('/') || input.runDir.length === base.length) {
          throw ApplicationFailure.nonRetryable(`refusing to remove ${input.runDir}: not a run folder under ${base}`, 'InvalidPath');
        }
        await host.run(['rm', '-rf', '--', input.runDir]);
      },
      { signal: cancellationSignal() },
    );
}
