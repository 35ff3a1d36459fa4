import { ApplicationFailure } from '@temporalio/common';
import type { S3Client } from '@aws-sdk/client-s3';
import { posix } from 'node:path';
import { loadEncryptionKey } from '../../src/backup/keyring';
import { archiveSources, referencedSources } from '../../src/backup/archive-sources';
import type { Compression } from '../../src/backup/object-keys';
import type { ClusterConfig } from '../../src/config/schema';
import { s3ClientFor } from '../../src/storage/s3-client';
import { objectLockFor } from '../../src/storage/upload-stream';
import { collectBufferGarbage } from '../../src/worker-memory';
import type { ActivityDeps } from '../deps';
import { cancellationSignal, throttledHeartbeat, transferring, whilePreparing } from '../heartbeat';
import { withClusterNode } from '../../src/ssh/session';
import { withSnapshotHost, type ByteStream, type SnapshotSource } from '../../src/backup/snapshot-host';
import { streamToS3, type StreamedObject } from '../../src/backup/stream-to-s3';
import type { CompressOn } from '../../src/backup/codec';
import { kubernetesVersionOf } from './inspect-snapshot';

export interface UploadCommon {
  cluster: string;
  node: string;
  key: string;
  compression: Compression;
  encryptionKeyId: string | null;
}

export interface UploadSnapshotInput extends UploadCommon {
  path: string;
  /** Where the file is (absent in histories from before direct mode: the node). */
  source?: SnapshotSource;
  /** The file's size from the snapshot step. */
  sizeBytes?: number;
  /** From the plan: the node compresses before SSH (absent in older histories: the worker). */
  compressOn?: CompressOn;
}

const PLAIN_BYTES_PER_COLLECTION = 8 * 1024 * 1024;

export interface StreamCommandOptions {
  /** The node compressed the bytes with `input.compression` already. */
  arrivesCompressed?: boolean;
  /** Gets the plain bytes that went through, once the source has ended and before the object is completed; throwing aborts the upload. */
  beforeComplete?: (plainBytes: number) => Promise<void>;
  /** The bytes are an etcd snapshot with its SHA-256 trailer, from here (for errors): completed only if it matches. */
  etcdSnapshotFrom?: string;
  /** The source hashes its own plain bytes (streamToS3's `sourceSha256`). */
  sourceSha256?: () => Promise<string>;
}

/** Streams `remote` to S3 as `input.key`. */
export async function streamCommand(
  deps: ActivityDeps,
  cluster: ClusterConfig,
  remote: ByteStream,
  input: UploadCommon,
  options: StreamCommandOptions = {},
): Promise<StreamedObject> {
  const { arrivesCompressed = false, beforeComplete, etcdSnapshotFrom, sourceSha256 } = options;
  const signal = cancellationSignal();
  const onAbort = () => remote.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  let s3: S3Client | undefined;
  let storing: Promise<StreamedObject> | undefined;
  try {
    const encryption = input.encryptionKeyId
      ? { key: await loadEncryptionKey(deps.config, input.encryptionKeyId), keyId: input.encryptionKeyId }
      : undefined;
    s3 = await s3ClientFor(cluster.storage, `clusters.${cluster.name}.storage`);
    const heartbeat = throttledHeartbeat();
    let collectedAt = 0;
    let collections = 0;
    let plainBytes = 0;
    const stream = streamToS3({
      s3,
      bucket: cluster.storage.bucket,
      key: input.key,
      source: remote.stdout,
      compression: input.compression,
      arrivesCompressed,
      encryption,
      objectLock: objectLockFor(cluster.storage),
      onProgress: (bytes) => {
        plainBytes = bytes;
        heartbeat({ key: input.key, bytes });
        // Compressed 10:1, a 5 MiB part stands for 50 MiB of plain chunks (read, compressed or decoded, then dropped):
        // collect per plain bytes too, or they pile up between parts (src/worker-memory.ts).
        if (bytes - collectedAt >= PLAIN_BYTES_PER_COLLECTION) {
          collectedAt = bytes;
          collectBufferGarbage(++collections);
        }
      },
      afterPart: collectBufferGarbage,
      beforeComplete: beforeComplete && (() => beforeComplete(plainBytes)),
      etcdSnapshotFrom,
      sourceSha256,
      signal,
    });
    storing = stream;
    const [stored] = await transferring(() => Promise.all([stream, remote.done]));
    return stored;
  } catch (err) {
    // Stops the command and releases its channel (whatever it had still sent is thrown away), which also ends the
    // upload if the command failed first; the upload has aborted its multipart upload before its client goes.
    remote.close();
    await storing?.catch(() => undefined);
    // Cancelled (heartbeat timeout, workflow cancelled, worker shutting down): say so, as Temporal expects.
    throw signal?.aborted ? signal.reason : err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    s3?.destroy();
  }
}

/**
 * Streams the snapshot file from where it was taken (the node, or the worker in direct mode) to S3; nothing is
 * staged. On a node with the codec's tool the node compresses it (src/backup/codec.ts) and the worker decodes a copy
 * on the side. The SSH channel authenticates every packet, so the worker's own sha256 of what arrived (decoded) is
 * the snapshot's; the byte count is checked against the file's size from the snapshot step, which catches a
 * truncated read.
 */
export function uploadSnapshot(deps: ActivityDeps) {
  return (input: UploadSnapshotInput): Promise<StreamedObject> =>
    whilePreparing(
      () => ({ step: 'upload', key: input.key }),
      () =>
        withSnapshotHost(
          deps.config,
          input.cluster,
          input.node,
          input.source ?? 'node',
          async (host) => {
            const onNode = input.compressOn === 'node' && input.compression !== 'none' && host.readCompressed;
            const source = onNode ? await host.readCompressed!(input.path, input.compression) : await host.readFile(input.path);
            const stored = await streamCommand(deps, host.cluster, source, input, {
              arrivesCompressed: !!onNode,
              etcdSnapshotFrom: host.label,
            });
            if (input.sizeBytes !== undefined && stored.plainSize !== input.sizeBytes) {
              throw ApplicationFailure.retryable(
                `${stored.plainSize} bytes of the snapshot arrived from ${host.label}, the file has ${input.sizeBytes}`,
                'TransferCorrupted',
              );
            }
            return stored;
          },
          { signal: cancellationSignal() },
        ),
    );
}

export interface ControlPlaneArchive extends StreamedObject {
  files: string[];
  /** From the kube-apiserver manifest the archive read (absent in older histories, and on an etcd-only node). */
  kubernetesVersion?: string;
  /** Files the static-pod manifests reference outside the kubernetes dir: not archived (see src/backup/archive-sources.ts). */
  notArchived: string[];
}

/** tar of the PKI, the static-pod manifests, kubeadm's kubeconfigs and the kubelet's identity, streamed like the snapshot. */
export function uploadControlPlaneFiles(deps: ActivityDeps) {
  return (input: UploadCommon): Promise<ControlPlaneArchive> =>
    whilePreparing(
      () => ({ step: 'control-plane files', key: input.key }),
      () =>
        withClusterNode(
          deps.config,
          input.cluster,
          input.node,
          async (session) => {
            const fixed = archiveSources(session.cluster);
            const manifestsDir = session.cluster.paths.manifestsDir;
            const listed = (await session.run(['ls', '-1', manifestsDir], { allowFailure: true })).stdout.split('\n');
            const manifests: string[] = [];
            let kubernetesVersion: string | undefined;
            for (const f of listed.filter((x) => /\.ya?ml$/.test(x))) {
              const text = (await session.run(['cat', `${manifestsDir}/${f}`], { allowFailure: true })).stdout;
              manifests.push(text);
              if (f === 'kube-apiserver.yaml') kubernetesVersion = kubernetesVersionOf(text);
            }
            const { extra, outside } = referencedSources(session.cluster, manifests, fixed);
            const sources = [...fixed, ...extra];
            // One round trip: the node prints which of the candidate paths exist (paths passed as arguments, not pasted).
            const probe = await session.run([
              'sh',
              '-c',
              'for p; do [ -e "$p" ] && printf "%s\\n" "$p"; done; true',
              'sh',
              ...sources.map((s) => `${s.dir}/${s.name}`),
            ]);
            const existing = new Set(probe.stdout.split('\n'));
            const present = sources.filter((s) => existing.has(`${s.dir}/${s.name}`));
            if (!present.some((s) => s.name === posix.basename(session.cluster.paths.pkiDir))) {
              throw ApplicationFailure.nonRetryable(
                `${session.cluster.paths.pkiDir} does not exist on node "${session.node.name}"; check paths.pkiDir`,
                'PkiMissing',
              );
            }
            const tarArgs = present.flatMap((s) => ['-C', s.dir, s.name]);
            const listing = await session.run(['tar', '-cf', '/dev/null', '-v', ...tarArgs]);
            const files = listing.stdout.split('\n').filter((f) => f && !f.endsWith('/'));
            const stored = await streamCommand(deps, session.cluster, await session.stream(['tar', '-cf', '-', ...tarArgs]), input);
            return { ...stored, files, notArchived: outside, ...(kubernetesVersion ? { kubernetesVersion } : {}) };
          },
          { signal: cancellationSignal() },
        ),
    );
}
