import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { decryptChunks, DecryptionError, encryptChunks, readKeyId } from '../backup/encryption';
import { authenticateDocument, signDocument } from '../backup/manifest-auth';
import type { Compression } from '../backup/object-keys';
import type { StorageConfig } from '../config/schema';
import { chainFolder, chainsFolder, parseSegment, SEGMENT_PURPOSE, segmentKey, type Segment } from './segment';

/**
 * Segments in the bucket: each one object, written with a single PUT (a segment is small: the capture cuts them at a
 * size cap), compressed and encrypted like snapshots and signed like manifests; and read back as untrusted as a
 * manifest is. Reading believes a segment's content only when its tag verifies under the segment purpose; whether it
 * is in its place and in its chain is the chain check's (./chain.ts), which sees the whole chain.
 */

/** A segment's encoded object is refused past this: a segment is cut at a few MiB, so more is not ours. */
export const MAX_SEGMENT_OBJECT_BYTES = 256 * 1024 * 1024;

export interface SegmentCodec {
  compression: Compression;
  /** Segments are always encrypted and signed: continuous backups need the cluster's backup key. */
  key: Buffer;
  keyId: string;
}

const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);

/** zlib's zstd (Node >= 22.15), looked up when used: an older Node names itself instead of failing at load. */
function zstd(direction: 'zstdCompress' | 'zstdDecompress'): (b: Buffer) => Promise<Buffer> {
  const fn = (zlib as unknown as Record<string, typeof zlib.gzip | undefined>)[direction];
  if (!fn) throw new Error(`zstd-compressed segments need Node.js >= 22.15 on the worker (this is ${process.version})`);
  return promisify(fn);
}

async function compress(c: Compression, plain: Buffer): Promise<Buffer> {
  if (c === 'zstd') return zstd('zstdCompress')(plain);
  if (c === 'gzip') return gzip(plain, { level: 3 });
  return plain;
}

async function decompress(c: Compression, stored: Buffer): Promise<Buffer> {
  if (c === 'zstd') return zstd('zstdDecompress')(stored);
  if (c === 'gzip') return gunzip(stored);
  return stored;
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of source) parts.push(p);
  return Buffer.concat(parts);
}

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

/** The object a segment is stored as: signed JSON, compressed, encrypted. */
export async function encodeSegment(unsigned: Segment, codec: SegmentCodec): Promise<{ segment: Segment; body: Buffer }> {
  const segment = signDocument(unsigned, codec.key, codec.keyId, SEGMENT_PURPOSE);
  const compressed = await compress(codec.compression, Buffer.from(JSON.stringify(segment)));
  const body = await collect(encryptChunks(codec.key, codec.keyId)(once(compressed)));
  return { segment, body };
}

export function keyOfSegment(prefix: string, s: Segment, compression: Compression): string {
  return segmentKey({
    prefix,
    cluster: s.cluster,
    chain: s.chain,
    firstRevision: s.firstRevision,
    lastRevision: s.lastRevision,
    compression,
    encrypted: true,
  });
}

/**
 * Writes one segment (one PUT, checked by the store against its SHA-256) and returns it as signed, with its key:
 * the next segment links to it. Writing the same segment again writes the same key, so a retry after a lost answer
 * changes nothing a reader believes.
 */
export async function writeSegment(
  s3: S3Client,
  storage: Pick<StorageConfig, 'bucket' | 'prefix' | 'objectLock'>,
  unsigned: Segment,
  codec: SegmentCodec,
  signal?: AbortSignal,
): Promise<{ key: string; segment: Segment; storedBytes: number }> {
  const { segment, body } = await encodeSegment(unsigned, codec);
  const key = keyOfSegment(storage.prefix, segment, codec.compression);
  const lock = storage.objectLock
    ? {
        ObjectLockMode: storage.objectLock.mode,
        ObjectLockRetainUntilDate: new Date(Date.now() + storage.objectLock.days * 86_400_000),
      }
    : {};
  await s3.send(
    new PutObjectCommand({
      Bucket: storage.bucket,
      Key: key,
      Body: body,
      ContentLength: body.length,
      ChecksumSHA256: createHash('sha256').update(body).digest('base64'),
      ContentType: 'application/octet-stream',
      ...lock,
    }),
    { abortSignal: signal },
  );
  return { key, segment, storedBytes: body.length };
}

/** A segment that is not believed: unreadable, not decryptable, unsigned or forged. Names the key. */
export class UntrustedSegment extends Error {
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`segment ${key}: ${reason}`);
    this.name = 'UntrustedSegment';
  }
}

function compressionOfKey(key: string): Compression | undefined {
  const m = /\.seg\.json(\.zst|\.gz)?\.enc$/.exec(key);
  if (!m) return undefined;
  return m[1] === '.zst' ? 'zstd' : m[1] === '.gz' ? 'gzip' : 'none';
}

/**
 * Reads one segment back and believes its content or throws UntrustedSegment. `loadKey` resolves a key id from the
 * key ring (a rotated key still reads the segments it signed).
 */
export async function readSegment(
  s3: S3Client,
  bucket: string,
  key: string,
  loadKey: (keyId: string) => Promise<Buffer>,
  signal?: AbortSignal,
): Promise<Segment> {
  const compression = compressionOfKey(key);
  if (!compression) throw new UntrustedSegment(key, 'not a segment key (<first>-<last>.seg.json[.zst|.gz].enc)');
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
  if ((res.ContentLength ?? 0) > MAX_SEGMENT_OBJECT_BYTES) {
    (res.Body as { destroy?: () => void }).destroy?.();
    throw new UntrustedSegment(key, `${res.ContentLength} bytes, more than any segment (${MAX_SEGMENT_OBJECT_BYTES})`);
  }
  const stored = Buffer.from(await res.Body!.transformToByteArray());
  const keyId = readKeyId(stored);
  if (!keyId) throw new UntrustedSegment(key, 'not an encrypted lifeboat object');
  let secret: Buffer;
  try {
    secret = await loadKey(keyId);
  } catch (err) {
    throw new UntrustedSegment(key, `encrypted with key "${keyId}", which cannot be loaded (${(err as Error).message})`);
  }
  let text: string;
  try {
    const plain = await collect(decryptChunks((id) => (id === keyId ? secret : undefined))(once(stored)));
    text = (await decompress(compression, plain)).toString('utf8');
  } catch (err) {
    if (err instanceof DecryptionError) throw new UntrustedSegment(key, err.message);
    throw new UntrustedSegment(key, `it does not decode (${(err as Error).message})`);
  }
  const auth = await authenticateDocument(text, async () => secret, SEGMENT_PURPOSE);
  if (auth.status === 'unsigned') throw new UntrustedSegment(key, 'it is not signed');
  if (auth.status !== 'authentic') throw new UntrustedSegment(key, auth.reason);
  if (auth.keyId !== keyId) throw new UntrustedSegment(key, `signed with key "${auth.keyId}" but encrypted with "${keyId}"`);
  try {
    return parseSegment(key, text);
  } catch (err) {
    throw new UntrustedSegment(key, (err as Error).message);
  }
}

/** The chain ids a cluster has in the bucket (one listing per thousand chains, folders only). */
export async function listChainIds(s3: S3Client, storage: Pick<StorageConfig, 'bucket' | 'prefix'>, cluster: string): Promise<string[]> {
  const folder = chainsFolder(storage.prefix, cluster);
  const ids: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: storage.bucket, Prefix: folder, Delimiter: '/', ContinuationToken: token }),
    );
    for (const p of page.CommonPrefixes ?? []) if (p.Prefix) ids.push(p.Prefix.slice(folder.length, -1));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return ids.sort();
}

/**
 * A chain's segment keys in revision order (their names sort so), from after `startAfter` when given: a restore
 * lists a thousand segments per request, and a capture resuming from its heartbeat lists only what is newer.
 */
export async function listSegmentKeys(
  s3: S3Client,
  storage: Pick<StorageConfig, 'bucket' | 'prefix'>,
  cluster: string,
  chain: string,
  startAfter?: string,
): Promise<string[]> {
  const folder = chainFolder(storage.prefix, cluster, chain);
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: storage.bucket,
        Prefix: folder,
        ContinuationToken: token,
        ...(token || !startAfter ? {} : { StartAfter: startAfter }),
      }),
    );
    for (const o of page.Contents ?? []) if (o.Key && /\.seg\.json/.test(o.Key)) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}
