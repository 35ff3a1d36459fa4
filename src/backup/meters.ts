import { SnapshotHash } from './snapshot-hash';
import { Transform, type TransformCallback } from 'node:stream';

/** A pass-through that counts and hashes the bytes flowing by, and reports progress. */
export class HashMeter extends Transform {
  private readonly hash = new SnapshotHash();

  constructor(private readonly onProgress?: (bytes: number) => void) {
    super();
  }

  get bytes(): number {
    return this.hash.bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.onProgress?.(this.hash.bytes);
    cb(null, chunk);
  }

  /** Only valid once the stream has ended. */
  sha256(): string {
    return this.hash.sha256();
  }

  /** Only valid once the stream has ended: the bytes are a whole etcd snapshot by its SHA-256 trailer. */
  endsWithEtcdTrailer(): boolean {
    return this.hash.endsWithEtcdTrailer();
  }
}

/** A pass-through that only counts the bytes and reports progress: for a source that hashes its own bytes. */
export class ByteMeter extends Transform {
  bytes = 0;

  constructor(private readonly onProgress?: (bytes: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.onProgress?.(this.bytes);
    cb(null, chunk);
  }
}
