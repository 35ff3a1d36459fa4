import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * The bucket's own checksum of an object, as recorded in manifests: `crc32:<base64>[-<parts>]` for objects this
 * engine uploads now, or a bare base64 SHA-256 (`<base64>[-<parts>]`) in manifests written before CRC32 parts.
 *
 * Why CRC32 for the parts: the bucket's checksum guards against corruption on the way in and at rest; it is not the
 * backup's integrity proof (that is the manifest's SHA-256 of the content and, when encrypted, AES-GCM). CRC32 is
 * what the AWS SDKs default to, about twice as fast as SHA-256 on the worker, and lets the store skip hashing every
 * part with SHA-256 to check it (the payload is sent unsigned; the checksum is what the store verifies).
 */
export type ChecksumAlgorithm = 'CRC32' | 'SHA256';

export interface ObjectChecksum {
  algorithm: ChecksumAlgorithm;
  /** As the store reports it in HeadObject: base64, with "-<parts>" for a multipart (composite) checksum. */
  value: string;
}

const CRC32_PREFIX = 'crc32:';

export function formatChecksum(c: ObjectChecksum): string {
  return c.algorithm === 'CRC32' ? `${CRC32_PREFIX}${c.value}` : c.value;
}

export function parseChecksum(recorded: string): ObjectChecksum {
  return recorded.startsWith(CRC32_PREFIX)
    ? { algorithm: 'CRC32', value: recorded.slice(CRC32_PREFIX.length) }
    : { algorithm: 'SHA256', value: recorded };
}

/** The checksum a HeadObject (with ChecksumMode ENABLED) reports for `algorithm`, if any. */
export function reportedChecksum(
  head: { ChecksumCRC32?: string; ChecksumSHA256?: string },
  algorithm: ChecksumAlgorithm,
): string | undefined {
  return algorithm === 'CRC32' ? head.ChecksumCRC32 : head.ChecksumSHA256;
}

/** One part's checksum: 4 bytes of CRC32 or 32 of SHA-256. */
export function partDigest(algorithm: ChecksumAlgorithm, body: Buffer): Buffer {
  if (algorithm === 'SHA256') return createHash('sha256').update(body).digest();
  const digest = Buffer.alloc(4);
  digest.writeUInt32BE(crc32(body) >>> 0);
  return digest;
}

/** S3's composite checksum of a multipart object: the checksum of the concatenated part digests, then "-<parts>". */
export function compositeChecksum(algorithm: ChecksumAlgorithm, partDigests: Buffer[]): string {
  return `${partDigest(algorithm, Buffer.concat(partDigests)).toString('base64')}-${partDigests.length}`;
}
