/**
 * Turns etcd's snapshot messages into the bytes of the file `etcdctl snapshot save` writes (the bolt database, then
 * the 32-byte SHA-256 etcd sends as the last message, which `etcdutl snapshot restore` checks), and refuses to end a
 * stream that would not restore. etcdctl itself only checks size % 512 == 32; a stream uploaded while it arrives has
 * no file to look at afterwards, so everything is checked on the way: the size announced by the first message, the
 * remaining_bytes of every message, and the hash. Any failure errors the stream before its last bytes go out, so a
 * consumer never sees a clean end of a broken snapshot (gardener's backup-restore once stored corrupt snapshots that
 * way). Pure: tested with crafted messages.
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { SnapshotResponse } from './proto';

export interface SnapshotSummary {
  /** Bytes of the database, from the first message (remaining_bytes + its blob). */
  dbBytes: number;
  /** Bytes the stream gave out: the database and the 32-byte hash (the size of etcdctl's file). */
  bytes: number;
  /** SHA-256 of the database bytes, hex; equal to the trailer (anything else errored the stream). */
  sha256: string;
  /**
   * SHA-256 of every byte given out (the database and the trailer: etcdctl's file), hex. The same hash state carries
   * on past the trailer check, so an upload that records the file's hash needs no second pass over the bytes.
   */
  fileSha256: string;
  hashMatched: true;
  /** The storage version etcd 3.6 sends with every message (e.g. "3.6.0"); "" from 3.5. */
  version: string;
}

const HASH_BYTES = 32;

export class SnapshotVerifier extends Transform {
  private dbBytes?: number;
  private seen = 0;
  private readonly hash = createHash('sha256');
  private version = '';
  private done?: SnapshotSummary;

  /** `source` names where the snapshot comes from, in errors. */
  constructor(private readonly source: string) {
    super({ writableObjectMode: true });
  }

  /** Bytes of the database received so far (the hash not counted). */
  get bytesSeen(): number {
    return this.seen;
  }

  /** Set once the hash matched and the stream can end; emitted as 'verified' too. */
  get summary(): SnapshotSummary | undefined {
    return this.done;
  }

  override _transform(msg: SnapshotResponse, _enc: BufferEncoding, callback: TransformCallback): void {
    try {
      callback(null, this.checkMessage(msg));
    } catch (err) {
      callback(err as Error);
    }
  }

  private checkMessage(msg: SnapshotResponse): Buffer {
    const blob = msg.blob ?? Buffer.alloc(0);
    const remaining = Number(msg.remainingBytes);
    if (!Number.isSafeInteger(remaining)) throw this.fail(`remaining_bytes ${msg.remainingBytes} is not a size`);
    if (this.done) throw this.fail(`a message after the SHA-256 (${blob.length} bytes)`);
    if (this.dbBytes === undefined) {
      this.dbBytes = remaining + blob.length;
      this.version = msg.version ?? '';
      // etcd opened its read transaction before sending anything: the snapshot's point in time is behind us now.
      this.emit('started', this.dbBytes);
    }
    if (this.seen < this.dbBytes) {
      this.seen += blob.length;
      if (this.seen > this.dbBytes) throw this.fail(`${this.seen} bytes, more than the ${this.dbBytes} announced`);
      if (remaining !== this.dbBytes - this.seen) {
        throw this.fail(`remaining_bytes ${remaining} after ${this.seen} of ${this.dbBytes} bytes (expected ${this.dbBytes - this.seen})`);
      }
      this.hash.update(blob);
      return blob;
    }
    if (blob.length !== HASH_BYTES || remaining !== 0) {
      throw this.fail(`the message after the database has ${blob.length} bytes and remaining_bytes ${remaining}, not the 32-byte SHA-256`);
    }
    const digest = this.hash.copy().digest();
    if (!digest.equals(blob)) {
      throw this.fail(
        `SHA-256 mismatch: etcd sent ${blob.toString('hex')}, the ${this.dbBytes} bytes received hash to ${digest.toString('hex')}`,
      );
    }
    this.done = {
      dbBytes: this.dbBytes,
      bytes: this.dbBytes + HASH_BYTES,
      sha256: digest.toString('hex'),
      fileSha256: this.hash.update(blob).digest('hex'),
      hashMatched: true,
      version: this.version,
    };
    this.emit('verified', this.done);
    return blob;
  }

  override _flush(callback: TransformCallback): void {
    if (this.done) return callback();
    if (this.dbBytes === undefined) return callback(this.fail('the stream ended before any message'));
    if (this.seen < this.dbBytes) return callback(this.fail(`the stream ended after ${this.seen} of ${this.dbBytes} bytes`));
    callback(this.fail(`the stream ended after all ${this.dbBytes} bytes but without the SHA-256`));
  }

  private fail(what: string): Error {
    return new Error(`etcd snapshot from ${this.source}: ${what}`);
  }
}
