import { ApplicationFailure } from '@temporalio/common';
import { revisionBelow, type Revision } from '../../src/etcd/revision';
import type { EtcdSnapshotInfo } from '../../src/backup/manifest';
import { backupObjectKeys, type Compression } from '../../src/backup/object-keys';
import { directEtcdClient } from '../../src/backup/direct-etcd';
import type { StreamedObject } from '../../src/backup/stream-to-s3';
import { findCluster } from '../../src/config/load';
import type { ClusterConfig } from '../../src/config/schema';
import type { EtcdClient } from '../../src/etcd/grpc/client';
import { countPerResource } from '../../src/etcd/grpc/registry-counts';
import { snapshotStream, type SnapshotDownload } from '../../src/etcd/grpc/snapshot';
import { status, type EtcdStatus } from '../../src/etcd/grpc/status';
import { abortUnfinishedUploads } from '../../src/storage/multipart';
import { s3ClientFor } from '../../src/storage/s3-client';
import type { ActivityDeps } from '../deps';
import { activityContext, cancellationSignal, whilePreparing } from '../heartbeat';
import { checkRevisionFloor, refusalOf, type RevisionRegressionAllowed } from './revision-check';
import { streamCommand } from './upload';
import { pipeline } from 'node:stream';
import { Coalesce } from '../../src/backup/coalesce';

export interface StreamSnapshotInput {
  cluster: string;
  /** The control-plane node the backup is of (its archive comes from there; the stream itself is from etcd). */
  node: string;
  prefix: string;
  compression: Compression;
  encryptionKeyId: string | null;
  /** A person's go-ahead to store a snapshot whose revision is below the floor (etcd reset on purpose). */
  allowRevisionRegression?: boolean;
}

export interface StreamedSnapshot {
  /** When etcd took the snapshot (its first message arrived); names the objects with `etcd.revision`. */
  takenAt: string;
  object: StreamedObject;
  /** No `hash` and `totalKeys`: those are `snapshot status` figures, and there is no file to read them from. */
  etcd: EtcdSnapshotInfo;
  /**
   * Only in histories from before the archive step named it (this step then opened an SSH session of its own for one
   * file the archive reads anyway: ~165 ms of the node's sshd CPU per backup).
   */
  kubernetesVersion?: string;
  resourceCounts: Record<string, number>;
  revisionRegressionAllowed?: RevisionRegressionAllowed;
}

/**
 * How often the snapshot is started again when etcd's revision moved between the Status read before it and the one
 * after its first message (a write landed in those few milliseconds, so which revision the snapshot holds is not
 * known): nothing has been uploaded yet, a new start costs one round trip.
 */
const PIN_ATTEMPTS = 8;
const BLOCK_BYTES = 1024 * 1024;

/**
 * Direct mode: etcd's Maintenance/Snapshot stream, compressed, encrypted and uploaded (multipart) as it arrives, with
 * no copy on the worker's disk or the node's. The multipart upload is completed only when the stream ended well: the
 * byte count is the size etcd announced and etcd's SHA-256 trailer matched (SnapshotVerifier errors the stream
 * otherwise); any failure aborts it, so nothing is stored. The stored bytes keep the trailer, as `etcdctl snapshot
 * save` writes them, so `etcdutl snapshot restore` checks it. The stream does not say which revision it holds (etcd
 * issue 9037): Status is read before it starts and after its first message, and only a snapshot whose revision did
 * not move in between is kept. The counts per resource are read from etcd at that revision while the bytes flow, and
 * the revision floor is checked meanwhile too; a refusal stops the stream and aborts the upload.
 */
export function streamSnapshot(deps: ActivityDeps) {
  return (input: StreamSnapshotInput): Promise<StreamedSnapshot> =>
    whilePreparing(
      () => ({ step: 'snapshot' }),
      () => streamed(deps, input),
    );
}

async function streamed(deps: ActivityDeps, input: StreamSnapshotInput): Promise<StreamedSnapshot> {
  const cluster = findCluster(deps.config, input.cluster);
  const direct = cluster.etcd.direct;
  if (!direct)
    throw ApplicationFailure.nonRetryable(`cluster "${cluster.name}": etcd.direct is no longer in the config`, 'DirectModeMisconfigured');
  const signal = cancellationSignal();
  const client = await directEtcdClient(direct);
  let download: SnapshotDownload | undefined;
  try {
    const pinned = await pinnedSnapshot(client, signal).catch((err: unknown) => {
      throw etcdFailure(cluster, err);
    });
    download = pinned.download;
    const { revision, takenAt } = pinned;
    const key = streamedSnapshotKey(input, cluster.name, `etcd at ${client.endpoint}`, revision, takenAt);
    // In 1 MiB blocks, as a file read hands them out (src/backup/coalesce.ts); an error of etcd's stream ends it too.
    const stream = new Coalesce(BLOCK_BYTES);
    pipeline(download.stream, stream, () => undefined);
    // Below the floor the stream stops at once (nothing is completed); otherwise the answer is awaited before completing.
    const floor = checkRevisionFloor(deps, cluster, revision, input.allowRevisionRegression === true, async () => undefined);
    floor.catch(() => stream.destroy());
    // At the snapshot's revision while etcd still has it (the API server compacts every few minutes), else now.
    const counting = countPerResource(client, revision).catch(() => countPerResource(client).catch(() => ({})));
    await abortPreviousAttempt(cluster, signal);
    let object: StreamedObject;
    try {
      object = await streamCommand(
        deps,
        cluster,
        { stdout: stream, done: download.summary, close: () => stream.destroy() },
        { cluster: cluster.name, node: input.node, key, compression: input.compression, encryptionKeyId: input.encryptionKeyId },
        {
          beforeComplete: async (plainBytes) => {
            const summary = await pinned.download.summary;
            if (plainBytes !== summary.bytes) {
              throw ApplicationFailure.retryable(
                `${plainBytes} bytes of etcd's snapshot reached the upload, etcd sent ${summary.bytes}`,
                'TransferCorrupted',
              );
            }
            await floor;
          },
          // etcd's trailer check hashed every byte already: the manifest's SHA-256 comes from that one pass.
          sourceSha256: async () => (await pinned.download.summary).fileSha256,
        },
      );
    } catch (err) {
      // The floor's refusal is the reason the stream stopped; otherwise the stream's or the store's own error.
      throw (await refusalOf(floor)) ?? etcdFailure(cluster, err);
    }
    const summary = await download.summary;
    return {
      takenAt,
      object,
      etcd: {
        revision,
        totalSize: summary.dbBytes,
        serverVersion: pinned.before.version || undefined,
        storageVersion: summary.version || undefined,
      },
      resourceCounts: await counting,
      ...((await floor) ? { revisionRegressionAllowed: await floor } : {}),
    };
  } finally {
    download?.stream.destroy();
    client.close();
  }
}

/** A snapshot stream whose revision is known: Status before it and after its first message agree. */
async function pinnedSnapshot(
  client: EtcdClient,
  signal: AbortSignal | undefined,
): Promise<{ download: SnapshotDownload; revision: Revision; takenAt: string; before: EtcdStatus }> {
  const moves: string[] = [];
  for (let attempt = 1; attempt <= PIN_ATTEMPTS; attempt++) {
    const before = await status(client);
    const download = snapshotStream(client, signal);
    try {
      await download.started;
      const takenAt = new Date().toISOString();
      const after = await status(client);
      if (after.revision === before.revision) return { download, revision: before.revision, takenAt, before };
      moves.push(`${before.revision}->${after.revision}`);
    } catch (err) {
      download.stream.destroy();
      throw err;
    }
    download.stream.destroy();
  }
  throw ApplicationFailure.retryable(
    `etcd at ${client.endpoint} was written to while each of ${PIN_ATTEMPTS} snapshots started (revisions ${moves.join(', ')}), so which revision a snapshot holds cannot be known; the step is retried`,
    'SnapshotRevisionUnknown',
  );
}

/**
 * A retried attempt's first act: the upload of the attempt before it (worker killed mid-stream) is aborted, so its
 * parts are not left in the bucket. Its key is in that attempt's last heartbeat (a new attempt takes a new snapshot,
 * named by its own time and revision).
 */
export async function abortPreviousAttempt(cluster: ClusterConfig, signal: AbortSignal | undefined): Promise<void> {
  const details = activityContext()?.info.heartbeatDetails as { key?: unknown } | undefined;
  if (typeof details?.key !== 'string') return;
  const s3 = await s3ClientFor(cluster.storage);
  try {
    await abortUnfinishedUploads(s3, cluster.storage.bucket, details.key, signal);
  } finally {
    s3.destroy();
  }
}

/** etcd's errors name the fix: a certificate etcd does not trust is permanent; an etcd that is down may come back. */
function etcdFailure(cluster: ClusterConfig, err: unknown): unknown {
  if (err instanceof ApplicationFailure || (err as Error | undefined)?.name === 'AbortError') return err;
  const message = (err as Error).message;
  // Only etcd's own errors (the client's messages start so): a store's TLS or connection error is the store's to name.
  if (!message.startsWith('etcd ')) return err;
  if (/certificate|x509|tls|handshake|SSL/i.test(message)) {
    return ApplicationFailure.nonRetryable(
      `${message}. Check etcd.direct.caFile/certFile/keyFile in the config: etcd must trust the client certificate and the worker etcd's CA.`,
      'SnapshotFailed',
    );
  }
  if (/UNAVAILABLE|No connection|ECONNREFUSED|deadline/i.test(message))
    return ApplicationFailure.retryable(
      `${message}. Is etcd running and reachable from the worker at ${cluster.etcd.direct?.endpoints.join(',')}?`,
      'SnapshotFailed',
    );
  return err;
}

/**
 * The bucket key of a snapshot streamed as etcd sends it (named by its pinned revision before its first byte is
 * stored); an empty etcd (revision 0 or 1: nothing ever written) is refused as a backup, naming `source`.
 */
export function streamedSnapshotKey(
  input: Pick<StreamSnapshotInput, 'prefix' | 'compression' | 'encryptionKeyId'>,
  cluster: string,
  source: string,
  revision: Revision,
  takenAt: string,
): string {
  if (!revisionBelow(1, revision)) {
    throw ApplicationFailure.nonRetryable(`${source} is empty (revision ${revision}); refusing to store it as a backup`, 'EmptySnapshot');
  }
  return backupObjectKeys({
    prefix: input.prefix,
    cluster,
    takenAt,
    revision,
    compression: input.compression,
    encrypted: input.encryptionKeyId !== null,
  }).snapshot;
}
