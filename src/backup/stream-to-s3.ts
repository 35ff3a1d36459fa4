import type { S3Client } from '@aws-sdk/client-s3';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { encryptChunks, type ChunkStage } from './encryption';
import type { StoredObject } from './manifest';
import { ByteMeter, HashMeter } from './meters';
import { compressor, DecodedMeter } from './codec';
import type { Compression } from './object-keys';
import { uploadStream, type ObjectLockRetention, type UploadedStream } from '../storage/upload-stream';

export const PART_SIZE = 5 * 1024 * 1024;
/** Parts in flight at once: memory stays at PART_SIZE * (QUEUE_SIZE + 1) whatever the object's size. */
export const QUEUE_SIZE = 3;

export interface StreamToS3Options {
  s3: S3Client;
  bucket: string;
  key: string;
  source: Readable;
  compression: Compression;
  /**
   * The source already holds `compression`-compressed bytes (the node compressed them before SSH): nothing is
   * compressed here; a copy is decoded on the side for the plain size and SHA-256.
   */
  arrivesCompressed?: boolean;
  encryption?: { key: Buffer; keyId: string };
  objectLock?: ObjectLockRetention;
  onProgress?: (plainBytes: number) => void;
  /** Passed to the uploader: called after each part is handed to the store. */
  afterPart?: (partNumber: number) => void;
  /** Passed to the uploader: called once every stage has ended, before the object is completed; throwing aborts it. */
  beforeComplete?: () => Promise<void> | void;
  /**
   * The plain bytes are an etcd snapshot as etcd streamed it, ending with its SHA-256 trailer: the object is completed
   * only if they do (checked on the plain bytes this stream hashes anyway). Names the source in the error.
   */
  etcdSnapshotFrom?: string;
  /**
   * The source hashes its own plain bytes and gives their SHA-256 once it has ended (etcd's snapshot stream, whose
   * trailer check runs that hash anyway): they are only counted here, not hashed a second time.
   */
  sourceSha256?: () => Promise<string>;
  signal?: AbortSignal;
}

export interface StreamedObject extends StoredObject {
  s3Checksum: string;
}

/**
 * source -> sha256(plain) -> compress -> encrypt -> S3 (sha256 of the stored bytes and per-part checksums taken by
 * the uploader). With neither compression nor encryption the stored bytes are the plain bytes, hashed once. A source
 * that arrives compressed skips the compressor; its plain bytes are measured by decoding a copy (DecodedMeter).
 *
 * Settles only once every stage has stopped (since Node 22 pipeline waits for that; a source destroyed without an error
 * is failed here, see failWhenStoppedShort). A failed stage tears the others down; the uploader then aborts
 * its multipart upload once its parts in flight have ended (their answers say best what went wrong), or at once when
 * `signal` aborts.
 */
export async function streamToS3(o: StreamToS3Options): Promise<StreamedObject> {
  const precompressed = o.arrivesCompressed === true && o.compression !== 'none';
  const transforms: (Transform | ChunkStage)[] = [
    ...(precompressed ? [] : compressor(o.compression)),
    ...(o.encryption ? [encryptChunks(o.encryption.key, o.encryption.keyId)] : []),
  ];
  if (o.sourceSha256 && (precompressed || o.etcdSnapshotFrom !== undefined)) {
    throw new Error('streamToS3: sourceSha256 is for plain bytes whose source checked them itself');
  }
  // The plain bytes are measured by decoding a copy (they arrive compressed), by hashing them, or only counted where
  // their hash is known otherwise: the source's own, or the uploader's when they are stored as they are.
  const hashed = precompressed
    ? new DecodedMeter(o.compression, o.onProgress)
    : !o.sourceSha256 && (transforms.length > 0 || o.etcdSnapshotFrom !== undefined)
      ? new HashMeter(o.onProgress)
      : undefined;
  const plain = hashed ?? new ByteMeter(o.onProgress);
  const beforeComplete = async () => {
    // The caller's checks first: a source that failed (etcdctl's exit code) says best why the bytes are short.
    await o.beforeComplete?.();
    if (o.etcdSnapshotFrom !== undefined && !hashed!.endsWithEtcdTrailer()) {
      throw new SnapshotTrailerMismatch(
        `the ${plain.bytes} bytes of the snapshot from ${o.etcdSnapshotFrom} do not end with etcd's SHA-256 of them: cut short or altered on the way; nothing was stored`,
      );
    }
  };
  let uploading: Promise<UploadedStream> | undefined;
  const sink = (stored: AsyncIterable<Buffer>) =>
    (uploading = uploadStream({
      s3: o.s3,
      bucket: o.bucket,
      key: o.key,
      source: stored,
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      contentType: 'application/octet-stream',
      objectLock: o.objectLock,
      signal: o.signal,
      afterPart: o.afterPart,
      beforeComplete,
    }));
  failWhenStoppedShort(o.source, o.key);
  const stages: unknown[] = [o.source, plain, ...transforms, sink];
  try {
    await (pipeline as (...streams: unknown[]) => Promise<void>)(...stages, { signal: o.signal });
  } catch (err) {
    // When the store refuses a part, the uploader stops reading, which tears the transforms down: report the store's
    // own error (no space, access denied, ...), it is the one that says what to fix. An uploader that only stopped
    // because the pipeline was torn down (its requests aborted) has nothing to add to the pipeline's error.
    const uploadFailure = await uploading?.then(
      () => undefined,
      (failure: unknown) => failure,
    );
    throw uploadFailure !== undefined && !isAbortError(uploadFailure) ? uploadFailure : err;
  }
  const u = await uploading!;
  return {
    key: o.key,
    plainSize: plain.bytes,
    plainSha256: o.sourceSha256 ? await o.sourceSha256() : hashed ? hashed.sha256() : u.sha256,
    storedSize: u.bytes,
    storedSha256: u.sha256,
    s3Checksum: u.s3Checksum,
    compression: o.compression,
    encryption: o.encryption ? { algorithm: 'aes-256-gcm-stream', keyId: o.encryption.keyId } : null,
  };
}

/**
 * A source destroyed without an error before its end was read: whoever stopped it (a caller's close on cancellation,
 * a library's cleanup) stopped the object short. Node's pipeline, given a source that had already pushed its end and
 * is then destroyed with bytes still unread, waits for an 'end' a closed stream never emits (Node 24): the attempt
 * hung, ignoring cancellation, and the worker could not drain. Failing the source settles the pipeline, and the
 * uploader aborts its multipart upload, so nothing is stored. (A source that fails with its own error, or ends, is
 * left alone.)
 */
function failWhenStoppedShort(source: Readable, key: string): void {
  source.once('close', () => {
    if (!source.readableEnded && source.errored == null) {
      source.emit('error', new SourceStoppedShort(`the source of ${key} was stopped before its end, without a reason; nothing was stored`));
    }
  });
}

export class SourceStoppedShort extends Error {
  override readonly name = 'SourceStoppedShort';
}

/** A snapshot whose bytes fail etcd's own trailer: a retry reads it again. */
export class SnapshotTrailerMismatch extends Error {
  override readonly name = 'SnapshotTrailerMismatch';
}

function isAbortError(err: unknown): boolean {
  return (err as Error | undefined)?.name === 'AbortError';
}
