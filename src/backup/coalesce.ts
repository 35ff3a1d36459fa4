import { Transform, type TransformCallback } from 'node:stream';

/**
 * Joins small chunks into blocks of at least `size` bytes. etcd's snapshot stream arrives in 32 KiB messages: handed
 * on as they come, each is a trip through zlib's thread pool and a step of every stage after it; in 1 MiB blocks
 * (what a file read hands out) the compressor does the same work in a thirty-second of the calls.
 */
export class Coalesce extends Transform {
  private parts: Buffer[] = [];
  private filled = 0;

  constructor(private readonly size: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.parts.push(chunk);
    this.filled += chunk.length;
    if (this.filled >= this.size) cb(null, this.block());
    else cb();
  }

  override _flush(cb: TransformCallback): void {
    cb(null, this.filled > 0 ? this.block() : undefined);
  }

  private block(): Buffer {
    const block = Buffer.concat(this.parts, this.filled);
    this.parts = [];
    this.filled = 0;
    return block;
  }
}
