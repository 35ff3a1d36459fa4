import { createHash, type Hash } from 'node:crypto';

/** etcd appends the SHA-256 of the database to every snapshot it streams; `etcdctl snapshot save` keeps it in the file. */
export const ETCD_TRAILER_BYTES = 32;

/**
 * SHA-256 of a byte stream that can also say whether the stream ends with etcd's trailer: the SHA-256 of everything
 * before its last 32 bytes. One pass for both (the last 32 bytes are held back, and the whole stream's hash is the
 * held-back state plus them), so checking the trailer costs no second hash over a snapshot of gigabytes.
 */
export class SnapshotHash {
  private readonly hash: Hash = createHash('sha256');
  private held = Buffer.alloc(0);
  bytes = 0;

  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (chunk.length >= ETCD_TRAILER_BYTES) {
      this.hash.update(this.held);
      this.hash.update(chunk.subarray(0, chunk.length - ETCD_TRAILER_BYTES));
      // A copy: the chunk's memory goes back to its pool, 32 bytes of it are kept.
      this.held = Buffer.from(chunk.subarray(chunk.length - ETCD_TRAILER_BYTES));
      return;
    }
    const joined = Buffer.concat([this.held, chunk]);
    const cut = Math.max(0, joined.length - ETCD_TRAILER_BYTES);
    this.hash.update(joined.subarray(0, cut));
    this.held = joined.subarray(cut);
  }

  /** SHA-256 of every byte so far, hex. */
  sha256(): string {
    return this.hash.copy().update(this.held).digest('hex');
  }

  /**
   * Whether the bytes so far are a whole etcd snapshot by its own trailer; a truncated or altered stream is not
   * (a snapshot cut anywhere would need its last 32 bytes to be the hash of the rest).
   */
  endsWithEtcdTrailer(): boolean {
    if (this.held.length < ETCD_TRAILER_BYTES) return false;
    return this.hash.copy().digest().equals(this.held);
  }
}
