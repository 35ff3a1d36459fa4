import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decryptChunks, DecryptionError, type ChunkStage } from './encryption';
import type { StoredObject } from './manifest';
import { HashMeter } from './meters';
import { decompressor, isCorruptData } from './codec';

/** A stored backup object does not match its manifest: corrupt, truncated or tampered with. Never retried. */
export class BackupIntegrityError extends Error {
  constructor(
    readonly key: string,
    detail: string,
  ) {
    super(`backup object ${key} failed verification: ${detail}`);
    this.name = 'BackupIntegrityError';
  }
}

export interface ReadResult {
  plainSize: number;
  plainSha256: string;
  storedSize: number;
  storedSha256: string;
}

/**
 * Streams a stored object back into its original bytes (decrypt, decompress) into `sink`, checking on the way that
 * the stored bytes and the original bytes both hash to what the manifest recorded. Each encrypted chunk is
 * authenticated as it arrives; the hash comparison at the end catches anything else. On any mismatch the caller
 * gets a BackupIntegrityError and must treat what reached the sink as garbage.
 */
export async function readStoredObject(
  s3: S3Client,
  bucket: string,
  obj: StoredObject,
  keyFor: (keyId: string) => Buffer | undefined,
  sink: Writable,
  onProgress?: (storedBytes: number) => void,
  signal?: AbortSignal,
): Promise<ReadResult> {
  // One GET stream: parallel ranged GETs were measured no faster here (1 GiB from MinIO with hashing and a file
  // write: 4.3-4.7 s in one stream, 4.7-5.5 s in 4 × 8 MiB ranges) and held up to 117 MiB more.
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: obj.key }), { abortSignal: signal });
  // The plans' HEAD check (storedObjectProblem) may be minutes old by now, and not every reader has one: the size this
  // GET serves is checked again before a byte reaches the sink.
  if (res.ContentLength !== undefined && res.ContentLength !== obj.storedSize) {
    (res.Body as Readable).destroy();
    throw new BackupIntegrityError(obj.key, `the bucket holds ${res.ContentLength} bytes, the manifest says ${obj.storedSize}`);
  }
  const stored = new HashMeter(onProgress);
  // Neither encrypted nor compressed, the stored bytes are the original ones: one hash proves both recorded values.
  const same = !obj.encryption && obj.compression === 'none';
  const plain = same ? stored : new HashMeter();
  const stages: (Transform | ChunkStage)[] = [
    stored,
    ...(obj.encryption ? [decryptChunks(keyFor)] : []),
    ...decompressor(obj.compression, obj.key),
    ...(same ? [] : [plain]),
  ];
  try {
    await (pipeline as (...streams: unknown[]) => Promise<void>)(res.Body as Readable, ...stages, sink, { signal });
  } catch (err) {
    if (err instanceof DecryptionError) throw new BackupIntegrityError(obj.key, err.message);
    if (isCorruptData(err)) {
      throw new BackupIntegrityError(obj.key, `its compressed data is corrupt (${(err as Error).message})`);
    }
    throw err;
  }
  const result = { plainSize: plain.bytes, plainSha256: plain.sha256(), storedSize: stored.bytes, storedSha256: stored.sha256() };
  if (result.storedSha256 !== obj.storedSha256)
    throw new BackupIntegrityError(obj.key, `stored bytes hash to ${result.storedSha256}, the manifest says ${obj.storedSha256}`);
  if (result.plainSha256 !== obj.plainSha256)
    throw new BackupIntegrityError(obj.key, `restored bytes hash to ${result.plainSha256}, the manifest says ${obj.plainSha256}`);
  return result;
}
