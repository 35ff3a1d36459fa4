import { Upload } from '@aws-sdk/lib-storage';
import type { S3Client } from '@aws-sdk/client-s3';
import { PassThrough, type Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import * as zlib from 'node:zlib';
import { createEncryptStream } from '../../src/backup/encryption';
import type { StoredObject } from '../../src/backup/manifest';
import { HashMeter, PartChecksumMeter } from '../../src/backup/meters';
import type { Compression } from '../../src/backup/object-keys';
import { abortUnfinishedUploads } from '../../src/storage/multipart';

export const PART_SIZE = 8 * 1024 * 1024;
/** Parts in flight at once: memory stays near PART_SIZE * (QUEUE_SIZE + 1) whatever the object's size. */
export const QUEUE_SIZE = 4;

export interface StreamToS3Options {
  s3: S3Client;
  bucket: string;
  key: string;
  source: Readable;
  compression: Compression;
  encryption?: { key: Buffer; keyId: string };
  onProgress?: (plainBytes: number) => void;
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
 * source -> sha256(plain) -> compress -> encrypt -> sha256(stored) + S3 part checksums -> multipart upload.
 * Nothing is buffered beyond the upload queue. Unfinished uploads of this key from a crashed attempt are aborted
 * first, and this attempt's own parts are aborted if it fails, so the bucket never keeps half an object.
 */
export async function streamToS3(o: StreamToS3Options): Promise<StreamedObject> {
  await abortUnfinishedUploads(o.s3, o.bucket, o.key);
  const plain = new HashMeter(o.onProgress);
  const stored = new PartChecksumMeter(PART_SIZE);
  const body = new PassThrough({ highWaterMark: 1024 * 1024 });
  const upload = new Upload({
    client: o.s3,
    queueSize: QUEUE_SIZE,
    partSize: PART_SIZE,
    leavePartsOnError: false,
    params: {
      Bucket: o.bucket,
      Key: o.key,
      Body: body,
      ContentType: 'application/octet-stream',
      ChecksumAlgorithm: 'SHA256',
    },
  });
  const onAbort = () => void upload.abort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const stages: Transform[] = [plain, ...compressor(o.compression), ...(o.encryption ? [createEncryptStream(o.encryption.key, o.encryption.keyId)] : []), stored];
  try {
    const piping = pipeline([o.source, ...stages, body]);
    // If the upload fails first, tear the pipeline down so the source (an SSH channel) is released too.
    await Promise.all([
      piping,
      upload.done().catch((err: unknown) => {
        body.destroy(err as Error);
        throw err;
      }),
    ]);
  } catch (err) {
    await abortUnfinishedUploads(o.s3, o.bucket, o.key).catch(() => undefined);
    throw err;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
  return {
    key: o.key,
    plainSize: plain.bytes,
    plainSha256: plain.sha256(),
    storedSize: stored.bytes,
    storedSha256: stored.sha256(),
    s3Checksum: stored.s3Checksum(),
    compression: o.compression,
    encryption: o.encryption ? { algorithm: 'aes-256-gcm-stream', keyId: o.encryption.keyId } : null,
  };
}
