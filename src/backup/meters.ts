import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** A pass-through that counts and hashes the bytes flowing by, and reports progress. */
export class HashMeter extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  constructor(private readonly onProgress?: (bytes: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onProgress?.(this.bytes);
    cb(null, chunk);
  }

  /** Only valid once the stream has ended. */
  sha256(): string {
    return this.hash.copy().digest('hex');
  }
}

/**
 * Also computes S3's multipart checksum: SHA-256 of each `partSize` slice, then SHA-256 over the concatenated part
 * digests, written "<base64>-<parts>" (or the plain base64 SHA-256 when the object fits in one PutObject). Comparing
 * it with what the store reports proves the store holds exactly the bytes we sent, without reading them back.
 */
export class PartChecksumMeter extends HashMeter {
  private part: Hash = createHash('sha256');
  private partBytes = 0;
  private readonly partDigests: Buffer[] = [];

  constructor(
    private readonly partSize: number,
    onProgress?: (bytes: number) => void,
  ) {
    super(onProgress);
  }

  override _transform(chunk: Buffer, enc: BufferEncoding, cb: TransformCallback): void {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(this.partSize - this.partBytes, chunk.length - offset);
      this.part.update(chunk.subarray(offset, offset + take));
      this.partBytes += take;
      offset += take;
      if (this.partBytes === this.partSize) this.closePart();
    }
    super._transform(chunk, enc, cb);
  }

  private closePart(): void {
    this.partDigests.push(this.part.digest());
    this.part = createHash('sha256');
    this.partBytes = 0;
  }

  /** The checksum S3 reports for the object; only valid once the stream has ended. */
  s3Checksum(): string {
    const digests = [...this.partDigests];
    if (this.partBytes > 0 || digests.length === 0) digests.push(this.part.copy().digest());
    if (digests.length === 1) return digests[0]!.toString('base64'); // one part: lib-storage used a plain PutObject
    return `${createHash('sha256').update(Buffer.concat(digests)).digest('base64')}-${digests.length}`;
  }
}
