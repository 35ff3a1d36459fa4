import { revisionBelow } from '../../src/etcd/revision';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { createdFromName, importStagingPrefix } from '../../src/backup/import-source';
import { newestTrustedBackup, trustRulesFor } from '../../src/backup/trusted-catalog';
import { loadEncryptionKey } from '../../src/backup/keyring';
import type { FileSnapshotInfo } from '../../src/backup/manifest';
import { backupObjectKeys, clusterBackupPrefix, type BackupObjectKeys, type Compression } from '../../src/backup/object-keys';
import { streamToS3, type StreamedObject } from '../../src/backup/stream-to-s3';
import { findCluster } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { countKeys, DrillProblem, etcdToolsFor, restoreAndStartEtcd, type DrillEtcdTools } from '../../src/drill/etcd';
import { workerHost } from '../../src/drill/host';
import { removeScratch, stopRecorded } from '../../src/drill/processes';
import { checkRunKey } from '../../src/run-key';
import { durationMs } from '../../src/schedules/backup-schedules';
import { s3ClientFor } from '../../src/storage/s3-client';
import { objectLockFor } from '../../src/storage/upload-stream';
import type { ActivityDeps } from '../deps';
import { cancellationSignal, throttledHeartbeat, transferring, whilePreparing } from '../heartbeat';
import { parseSnapshotStatus } from './inspect-snapshot';

export interface ImportSource {
  /** The object in the cluster's bucket. */
  key: string;
  size: number;
  /** When the snapshot was taken: from its runbook name, else the object's time. */
  created: string;
  createdFrom: 'name' | 'object time';
}

/** Reads the source object's size and time; refuses what cannot be an etcd snapshot before any byte is read. */
export function planImport(deps: ActivityDeps) {
  return async (input: { cluster: string; key: string }): Promise<ImportSource> => {
    const cluster = findCluster(deps.config, input.cluster);
    const { bucket, prefix } = cluster.storage;
    if (input.key.startsWith(clusterBackupPrefix(prefix, cluster.name)))
      throw ApplicationFailure.nonRetryable(
        `key: ${input.key} is already under this cluster's backups (${clusterBackupPrefix(prefix, cluster.name)}); import takes a snapshot made by something else`,
        'InvalidInput',
      );
    const s3 = await s3ClientFor(cluster.storage, `clusters.${cluster.name}.storage`);
    try {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: input.key })).catch((err: unknown) => {
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status === 404)
          throw ApplicationFailure.nonRetryable(
            `s3://${bucket}/${input.key} does not exist (import reads from the cluster's bucket, storage.bucket)`,
            'SourceMissing',
          );
        throw err;
      });
      const size = head.ContentLength ?? 0;
      if (size === 0)
        throw ApplicationFailure.nonRetryable(`s3://${bucket}/${input.key} is empty (0 bytes): not an etcd snapshot`, 'NotASnapshot');
      const byName = createdFromName(input.key);
      const objectTime = (head.LastModified ?? new Date()).toISOString();
      // A snapshot is taken before it is written: a name dated after the object's own time (a minute's skew allowed) lies.
      if (byName && Date.parse(byName) > Date.parse(objectTime) + 60_000)
        throw ApplicationFailure.nonRetryable(
          `key: ${input.key} is dated ${byName} by its name, after the object was written (${objectTime}); rename it with the time it was taken (YYYY-MM-DD-HH-MM) and import it again`,
          'ImportTimeImplausible',
        );
      return { key: input.key, size, created: byName ?? objectTime, createdFrom: byName ? 'name' : 'object time' };
    } finally {
      s3.destroy();
    }
  };
}

/** The newest etcd tools configured for drills: they read (and restore) snapshots of their own and older versions. */
export async function readerTools(config: Config): Promise<DrillEtcdTools> {
  const minors = Object.keys(config.drill.etcd).sort((a, b) => {
    const [am, an] = a.split('.').map(Number);
    const [bm, bn] = b.split('.').map(Number);
    return bm - am || bn - an;
  });
  if (!minors.length)
    throw ApplicationFailure.nonRetryable(
      'no etcd tools configured on the worker to read the snapshot with: set drill.etcd."3.6" (or the version of the snapshot) to a folder holding etcd and etcdutl',
      'PreflightFailed',
    );
  // Always on the worker (drill.node is where drills run; an import reads and uploads the file here).
  const tools = await etcdToolsFor(workerHost, { etcd: config.drill.etcd, kubeApiserver: {}, field: 'drill' }, `${minors[0]}.0`);
  if (typeof tools === 'string') throw ApplicationFailure.nonRetryable(tools, 'PreflightFailed');
  return tools;
}

export interface ImportSnapshotInput {
  cluster: string;
  source: ImportSource;
  /** Names the worker's scratch folder for this run. */
  runKey: string;
  compression: Compression;
  encryptionKeyId: string | null;
}

export interface ImportedSnapshot {
  keys: BackupObjectKeys;
  snapshot: StreamedObject;
  etcd: FileSnapshotInfo;
  resourceCounts: Record<string, number>;
  /** What read and restored it, for the result. */
  checkedWith: string;
}

const notASnapshot = (from: string, why: string) =>
  ApplicationFailure.nonRetryable(`${from} is not a usable etcd snapshot: ${why}; nothing was stored`, 'NotASnapshot');

/**
 * On the worker, in <drill.scratchDir>/<run key>: downloads the snapshot, reads it with etcd's own reader (`snapshot
 * status`: revision, keys, hash, storage version), restores it into a throwaway etcd (which checks the hash etcdctl
 * appended to it: a truncated file fails here) and counts its keys per resource at its revision, then stores it
 * compressed and encrypted as a regular backup's snapshot object. Nothing reaches the backups' prefix unless all of
 * that passed. A retry starts over (same keys, same bytes).
 */
export function importSnapshot(deps: ActivityDeps) {
  return async (input: ImportSnapshotInput): Promise<ImportedSnapshot> => {
    const cluster = findCluster(deps.config, input.cluster);
    const tools = await readerTools(deps.config);
    const scratch = `${deps.config.drill.scratchDir}/${checkRunKey(input.runKey)}`;
    const from = `s3://${cluster.storage.bucket}/${input.source.key}`;
    const file = `${scratch}/snapshot.db`;
    const heartbeat = throttledHeartbeat();
    // The timer keeps the restore and the checks alive; the bytes heartbeat the transfers, so one that stalls times out.
    return whilePreparing(
      () => ({ step: 'import', scratch }),
      async () => {
        await removeScratch(scratch);
        await mkdir(scratch, { recursive: true, mode: 0o700 });
        const s3 = await s3ClientFor(cluster.storage, `clusters.${cluster.name}.storage`);
        try {
          // 1. the bytes, hashed on the way in
          const got = await s3.send(new GetObjectCommand({ Bucket: cluster.storage.bucket, Key: input.source.key }), {
            abortSignal: cancellationSignal(),
          });
          const sha = createHash('sha256');
          let bytes = 0;
          await transferring(() =>
            pipeline(
              got.Body as NodeJS.ReadableStream,
              new Transform({
                transform(chunk: Buffer, _e, cb) {
                  sha.update(chunk);
                  bytes += chunk.length;
                  heartbeat({ step: 'download', bytes });
                  cb(null, chunk);
                },
              }),
              createWriteStream(file, { mode: 0o600 }),
            ),
          );
          const plainSha256 = sha.digest('hex');
          if (bytes === 0) throw notASnapshot(from, 'it is empty (0 bytes)');
          // 2. etcd's reader
          const status = await promisify(execFile)(tools.restore.command, ['snapshot', 'status', '-w', 'json', file], {
            env: { ...process.env, ETCDCTL_API: '3' },
          }).catch((err: { stderr?: string; message: string }) => {
            // etcdutl panics on a truncated bolt file: its "panic:" line says why, the stack trace below it does not.
            const lines = (err.stderr || err.message).trim().split('\n');
            const why = lines.find((l) => /^(panic|Error):/.test(l.trim())) ?? lines.pop();
            throw notASnapshot(from, `${tools.restore.kind} snapshot status says: ${why?.trim().slice(0, 300)}`);
          });
          let info: Omit<FileSnapshotInfo, 'serverVersion'>;
          try {
            info = parseSnapshotStatus(status.stdout);
          } catch (err) {
            throw notASnapshot(from, (err as Error).message);
          }
          if (info.totalKeys === 0 || !revisionBelow(1, info.revision))
            throw notASnapshot(from, `it is empty (${info.totalKeys} keys, revision ${info.revision})`);
          // 3. a restore (checks the snapshot's own hash) and the count per resource at its revision
          let resourceCounts: Record<string, number>;
          try {
            const etcd = await restoreAndStartEtcd(workerHost, tools, scratch, file, durationMs(deps.config.drill.startTimeout));
            resourceCounts = await countKeys(workerHost, tools, etcd.clientUrl, info.revision);
          } catch (err) {
            if (err instanceof DrillProblem) throw notASnapshot(from, err.message);
            throw err;
          } finally {
            await stopRecorded(scratch); // the throwaway etcd: the file is all the upload needs
          }
          // 4. its time must not lie: "latest" is chosen by time, so an import whose name dates it after the newest
          // believed backup while etcd's own revision says it is older would become what a recovery restores.
          const newest = (await newestTrustedBackup(s3, trustRulesFor(deps.config, cluster))).newest?.manifest;
          if (newest && Date.parse(input.source.created) > Date.parse(newest.created) && revisionBelow(info.revision, newest.etcd.revision))
            throw ApplicationFailure.nonRetryable(
              `${from} is dated ${input.source.created} (${input.source.createdFrom === 'name' ? 'from its name' : "the object's time"}), after the newest backup ${newest.snapshot.key} (${newest.created}), but its etcd revision ${info.revision} is below that backup's ${newest.etcd.revision}: it is older than its date says; rename it with the time it was taken (YYYY-MM-DD-HH-MM) and import it again; nothing was stored`,
              'ImportTimeImplausible',
            );
          // 5. stored like a backup's snapshot
          const keys = backupObjectKeys({
            prefix: cluster.storage.prefix,
            cluster: cluster.name,
            takenAt: input.source.created,
            revision: info.revision,
            compression: input.compression,
            encrypted: input.encryptionKeyId !== null,
          });
          const encryption = input.encryptionKeyId
            ? { key: await loadEncryptionKey(deps.config, input.encryptionKeyId), keyId: input.encryptionKeyId }
            : undefined;
          const stored = await transferring(() =>
            streamToS3({
              s3,
              bucket: cluster.storage.bucket,
              key: keys.snapshot,
              source: createReadStream(file, { highWaterMark: 1024 * 1024 }),
              compression: input.compression,
              encryption,
              objectLock: objectLockFor(cluster.storage),
              onProgress: (n) => heartbeat({ step: 'upload', key: keys.snapshot, bytes: n }),
              signal: cancellationSignal(),
            }),
          );
          if (stored.plainSha256 !== plainSha256 || stored.plainSize !== (await stat(file)).size) {
            await s3.send(new DeleteObjectCommand({ Bucket: cluster.storage.bucket, Key: keys.snapshot }));
            throw ApplicationFailure.retryable(
              `the file changed while it was stored (sha256 ${stored.plainSha256}, read ${plainSha256})`,
              'TransferCorrupted',
            );
          }
          return {
            keys,
            snapshot: stored,
            etcd: info,
            resourceCounts,
            checkedWith: `${tools.restore.kind} ${tools.minor} snapshot status and restore into a throwaway etcd`,
          };
        } finally {
          s3.destroy();
          await removeScratch(scratch);
        }
      },
    );
  };
}

/** Removes a local file's staged copy (`backup import <cluster> <file>`), and only such: the import's own upload. */
export function removeStagedImport(deps: ActivityDeps) {
  return async (input: { cluster: string; key: string }): Promise<void> => {
    const cluster = findCluster(deps.config, input.cluster);
    const staging = importStagingPrefix(cluster.storage.prefix, cluster.name);
    const rest = input.key.slice(staging.length);
    if (!input.key.startsWith(staging) || !rest || rest.includes('/'))
      throw ApplicationFailure.nonRetryable(`refusing to remove ${input.key}: not a staged import under ${staging}`, 'InvalidPath');
    const s3 = await s3ClientFor(cluster.storage);
    try {
      await s3.send(new DeleteObjectCommand({ Bucket: cluster.storage.bucket, Key: input.key }));
    } finally {
      s3.destroy();
    }
  };
}
