import type { S3Client } from '@aws-sdk/client-s3';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import * as zlib from 'node:zlib';
import { encryptChunks, type ChunkStage } from './encryption';
import type { StoredObject } from './manifest';
import { HashMeter } from './meters';
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
  encryption?: { key: Buffer; keyId: string };
  objectLock?: ObjectLockRetention;
  onProgress?: (plainBytes: number) => void;
  /** Passed to the uploader: called after each part is handed to the store. */
  afterPart?: (partNumber: number) => void;
  signal?: AbortSignal;
}

export interface StreamedObject extends StoredObject {
  s3Checksum: string;
}

function compressor(c: Compression): Transform[] {
  if (c === 'gzip') return [createGzip({ level: 3 })];
  if (c === 'zstd') {
    const create = (zlib as unknown as { createZstdCompress?: () => Transform }).createZstdCompress;
    if (!create) throw new Error('compression "zstd" needs Node.js >= 22.15 on the worker; use "gzip" or upgrade Node');
    return [create()];
  }
  return [];
}

/**
 * source -> sha256(plain) -> compress -> encrypt -> S3 (sha256 of the stored bytes and per-part checksums taken by
 * the uploader). With neither compression nor encryption the stored bytes are the plain bytes, hashed once.
 *
 * Settles only once every stage has stopped (since Node 22 pipeline waits for that, so the source must be a stream
 * that really ends when destroyed; see streamOnNode). A failed stage tears the others down; the uploader then aborts
 * its multipart upload once its parts in flight have ended (their answers say best what went wrong), or at once when
 * `signal` aborts.
 */
export async function streamToS3(o: StreamToS3Options): Promise<StreamedObject> {
  const transforms: (Transform | ChunkStage)[] = [
    ...compressor(o.compression),
    ...(o.encryption ? [encryptChunks(o.encryption.key, o.encryption.keyId)] : []),
  ];
  const plain = transforms.length > 0 ? new HashMeter(o.onProgress) : undefined;
  let progressed = 0;
  let uploading: Promise<UploadedStream> | undefined;
  const sink = (stored: AsyncIterable<Buffer>) =>
    (uploading = uploadStream({
      s3: o.s3,
      bucket: o.bucket,
      key: o.key,
      source: plain ? stored : counted(stored, (n) => o.onProgress?.((progressed += n))),
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      contentType: 'application/octet-stream',
      objectLock: o.objectLock,
      signal: o.signal,
      afterPart: o.afterPart,
    }));
  const stages: unknown[] = [o.source, ...(plain ? [plain] : []), ...transforms, sink];
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
    plainSize: plain ? plain.bytes : u.bytes,
    plainSha256: plain ? plain.sha256() : u.sha256,
    storedSize: u.bytes,
    storedSha256: u.sha256,
    s3Checksum: u.s3Checksum,
    compression: o.compression,
    encryption: o.encryption ? { algorithm: 'aes-256-gcm-stream', keyId: o.encryption.keyId } : null,
  };
}

function isAbortError(err: unknown): boolean {
  return (err as Error | undefined)?.name === 'AbortError';
}

async function* counted(source: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncIterable<Buffer> {
  for await (const chunk of source) {
    onBytes(chunk.length);
    yield chunk;
  }
}
