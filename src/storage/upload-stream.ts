import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { compositeChecksum, formatChecksum, partDigest, type ChecksumAlgorithm } from './checksum';
import { abortUnfinishedUploads } from './multipart';

/** Write-once retention on each object, for buckets with S3 Object Lock (WORM against deletion and ransomware). */
export interface ObjectLockRetention {
  mode: 'GOVERNANCE' | 'COMPLIANCE';
  retainUntil: Date;
}

/** The retention for an object uploaded now, from the storage config (none when the config sets none). */
export function objectLockFor(
  config: { objectLock?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; days: number } },
  now = new Date(),
): ObjectLockRetention | undefined {
  if (!config.objectLock) return undefined;
  return { mode: config.objectLock.mode, retainUntil: new Date(now.getTime() + config.objectLock.days * 86_400_000) };
}

/** The request parameters that set `lock` on an uploaded object (none without a lock). */
export function objectLockParams(lock: ObjectLockRetention | undefined): {
  ObjectLockMode?: ObjectLockRetention['mode'];
  ObjectLockRetainUntilDate?: Date;
} {
  return lock ? { ObjectLockMode: lock.mode, ObjectLockRetainUntilDate: lock.retainUntil } : {};
}

export interface UploadStreamOptions {
  s3: S3Client;
  bucket: string;
  key: string;
  source: AsyncIterable<Buffer> | Readable;
  partSize: number;
  /** Parts uploading at once. Memory is at most (queueSize + 1) part buffers, allocated as needed and reused. */
  queueSize: number;
  contentType?: string;
  objectLock?: ObjectLockRetention;
  /** The parts' checksum, which the store verifies: CRC32 (the default) or SHA-256. */
  checksum?: ChecksumAlgorithm;
  signal?: AbortSignal;
  /** Called after each part is handed to the store (the caller's memory policy, e.g. collecting garbage). */
  afterPart?: (partNumber: number) => void;
  /**
   * Called once the source has ended, before the object is made visible (PutObject, CompleteMultipartUpload): the
   * caller's last word on whether what it sent is whole. Throwing aborts the upload; nothing is stored.
   */
  beforeComplete?: () => Promise<void> | void;
}

export interface UploadedStream {
  bytes: number;
  /** SHA-256 (hex) of every byte uploaded. */
  sha256: string;
  /** The bucket's checksum of the object as a manifest records it (see checksum.ts): the object's, or the composite of its parts. */
  s3Checksum: string;
  parts: number;
}

/**
 * Streams into one S3 object with a fixed set of part buffers. Each part gets one checksum (CRC32 by default), which
 * the store verifies on arrival and which is a term of the object's composite checksum; with SHA-256 that digest is
 * also the SigV4 payload hash, and with CRC32 the payload goes unsigned (the checksum guards it) so neither side
 * spends a SHA-256 pass per part. Objects smaller than a part go up as one PutObject. Any unfinished
 * upload of this key from a crashed attempt is aborted first, and this one is aborted if it fails, so the bucket
 * never keeps parts nobody will complete.
 */
export async function uploadStream(o: UploadStreamOptions): Promise<UploadedStream> {
  if (o.partSize < 5 * 1024 * 1024) throw new Error(`part size ${o.partSize} is below S3's minimum of 5 MiB`);
  await abortUnfinishedUploads(o.s3, o.bucket, o.key, o.signal);
  const whole: Hash = createHash('sha256');
  // Part buffers are allocated when first needed (a small object never needs more than one) and then reused.
  const free: Buffer[] = [];
  let allocated = 1;
  const waiting: (() => void)[] = [];
  const inFlight = new Set<Promise<void>>();
  const completed: CompletedPart[] = [];
  const partDigests: Buffer[] = [];
  let uploadId: string | undefined;
  // The first part to fail, unless a later one has the store's own answer: a store that refuses a part (no space,
  // access denied) may reset the connections of the parts in flight, and "ECONNRESET" says nothing about what to fix.
  let failure: Error | undefined;
  const partFailures = new Set<unknown>();
  const noteFailure = (err: unknown) => {
    partFailures.add(err);
    const e = err instanceof Error ? err : new Error(String(err));
    if (failure === undefined || (!storeAnswered(failure) && storeAnswered(e))) failure = e;
  };
  let bytes = 0;
  let current: Buffer = Buffer.allocUnsafeSlow(o.partSize);
  let filled = 0;
  const lock = objectLockParams(o.objectLock);
  const algorithm: ChecksumAlgorithm = o.checksum ?? 'CRC32';
  const checksumParams = (digest: Buffer) =>
    algorithm === 'CRC32' ? { ChecksumCRC32: digest.toString('base64') } : { ChecksumSHA256: digest.toString('base64') };

  const takeBuffer = async (): Promise<Buffer> => {
    if (free.length === 0 && allocated <= o.queueSize) {
      allocated += 1;
      return Buffer.allocUnsafeSlow(o.partSize);
    }
    while (free.length === 0) await new Promise<void>((r) => waiting.push(r));
    return free.pop()!;
  };
  const giveBack = (b: Buffer) => {
    free.push(b);
    waiting.shift()?.();
  };
  const withPayloadHash = <C extends { middlewareStack: { add: (...a: never[]) => void } }>(command: C, digest: Buffer): C => {
    // SigV4 signs this header's value instead of hashing the body a second time (or at all, with CRC32 parts).
    const payloadHash = algorithm === 'SHA256' ? digest.toString('hex') : 'UNSIGNED-PAYLOAD';
    (command.middlewareStack.add as (m: unknown, o: unknown) => void)(
      (next: (a: unknown) => unknown) => (args: { request: { headers: Record<string, string> } }) => {
        args.request.headers['x-amz-content-sha256'] = payloadHash;
        return next(args);
      },
      { step: 'build', name: 'lifeboatPayloadHash' },
    );
    return command;
  };

  const sendPart = (buffer: Buffer, length: number) => {
    const body = buffer.subarray(0, length);
    const digest = partDigest(algorithm, body);
    partDigests.push(digest);
    const partNumber = partDigests.length;
    const checksum = checksumParams(digest);
    const task: Promise<void> = o.s3
      .send(
        withPayloadHash(
          new UploadPartCommand({
            Bucket: o.bucket,
            Key: o.key,
            UploadId: uploadId,
            PartNumber: partNumber,
            Body: body,
            ContentLength: length,
            ...checksum,
          }),
          digest,
        ),
        { abortSignal: o.signal },
      )
      .then((r) => {
        completed.push({ PartNumber: partNumber, ETag: r.ETag, ...checksum });
      })
      .catch((err: unknown) => {
        noteFailure(err);
      })
      .finally(() => {
        inFlight.delete(task);
        giveBack(buffer);
      });
    inFlight.add(task);
  };

  try {
    for await (const chunk of o.source as AsyncIterable<Buffer>) {
      whole.update(chunk);
      bytes += chunk.length;
      let offset = 0;
      while (offset < chunk.length) {
        if (failure) throw failure;
        const take = Math.min(o.partSize - filled, chunk.length - offset);
        chunk.copy(current, filled, offset, offset + take);
        filled += take;
        offset += take;
        if (filled === o.partSize) {
          uploadId ??= (
            await o.s3.send(
              new CreateMultipartUploadCommand({
                Bucket: o.bucket,
                Key: o.key,
                ContentType: o.contentType,
                ChecksumAlgorithm: algorithm,
                ...lock,
              }),
              { abortSignal: o.signal },
            )
          ).UploadId;
          sendPart(current, filled);
          o.afterPart?.(partDigests.length);
          current = await takeBuffer();
          filled = 0;
        }
      }
    }
    await o.beforeComplete?.();
    if (uploadId === undefined) {
      // Smaller than one part: a single PutObject whose checksum is the whole object's.
      const body = current.subarray(0, filled);
      const digest = partDigest(algorithm, body);
      await o.s3.send(
        withPayloadHash(
          new PutObjectCommand({
            Bucket: o.bucket,
            Key: o.key,
            Body: body,
            ContentLength: filled,
            ContentType: o.contentType,
            ...checksumParams(digest),
            ...lock,
          }),
          digest,
        ),
        { abortSignal: o.signal },
      );
      return { bytes, sha256: whole.digest('hex'), s3Checksum: formatChecksum({ algorithm, value: digest.toString('base64') }), parts: 1 };
    }
    if (filled > 0) sendPart(current, filled);
    while (inFlight.size > 0) await Promise.all([...inFlight]);
    if (failure) throw failure;
    completed.sort((a, b) => a.PartNumber! - b.PartNumber!);
    await o.s3.send(
      new CompleteMultipartUploadCommand({ Bucket: o.bucket, Key: o.key, UploadId: uploadId, MultipartUpload: { Parts: completed } }),
      { abortSignal: o.signal },
    );
    return {
      bytes,
      sha256: whole.digest('hex'),
      s3Checksum: formatChecksum({ algorithm, value: compositeChecksum(algorithm, partDigests) }),
      parts: partDigests.length,
    };
  } catch (err) {
    await Promise.allSettled([...inFlight]);
    // Not tied to o.signal: the parts must go also when the upload was cancelled (the client's timeouts bound it).
    if (uploadId)
      await o.s3.send(new AbortMultipartUploadCommand({ Bucket: o.bucket, Key: o.key, UploadId: uploadId })).catch(() => undefined);
    // A part's failure: now that every part has ended, the most telling one.
    throw partFailures.has(err) ? failure : err;
  }
}

/** The error is the store's answer to the request (it has an HTTP status), not a connection that failed. */
function storeAnswered(err: unknown): boolean {
  return typeof (err as { $metadata?: { httpStatusCode?: unknown } } | undefined)?.$metadata?.httpStatusCode === 'number';
}
