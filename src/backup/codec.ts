import { Transform, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { SnapshotHash } from './snapshot-hash';
import type { Compression } from './object-keys';

/**
 * The compression codecs of backup objects, in one place: how the node compresses a file where it lies (before the
 * bytes cross SSH), how the worker compresses (direct mode, the control-plane archive, a node without the tool) and
 * how every reader decompresses (recovery fetch, drill fetch, plan checks: src/backup/read-object.ts). The stored
 * bytes are the same standard stream whoever compressed them (a zstd frame, a gzip member), so a restore never needs
 * to know where compression ran.
 *
 * Levels (measured by `npm run bench:backup` on a 1.6 GiB snapshot of Kubernetes-shaped objects: zstd -1 0.081 of
 * the size in 2.8 CPU s, zstd -3 0.080 in 3.5, gzip -1 0.131 in 10.8; on random values zstd -1 and -3 both 0.75 in
 * ~4 s, gzip -1 0.77 in 45 s): zstd 1 on both sides, as cheap as it gets for the same size; gzip 1 on the node and 3 on
 * the worker as before.
 */
export const ZSTD_LEVEL = 1;
export const NODE_GZIP_LEVEL = 1;
export const WORKER_GZIP_LEVEL = 3;

/**
 * zlib's streams hand out 16 KiB per call by default, one trip through libuv's thread pool each: decoding a 1.6 GiB
 * snapshot took ~100k trips, 2.15 s per 512 MiB of Kubernetes-shaped data with its hash, against 0.65 s with 256 KiB
 * (0.59 s with 1 MiB). Measured on the project's Node 24, 2 cores. A chunk or two of this size is all a stream holds.
 */
export const CODEC_CHUNK = 256 * 1024;

/** Where the snapshot's bytes are compressed: on the node before SSH, or on the worker. */
export type CompressOn = 'node' | 'worker';

/** The program the node needs for a codec; none for `none`. */
export function nodeTool(c: Compression): string | undefined {
  return c === 'zstd' ? 'zstd' : c === 'gzip' ? 'gzip' : undefined;
}

/** A command that checks the node's tool really runs (not only that a file by that name is on the PATH). */
export function nodeToolProbe(c: Compression): string[] | undefined {
  const tool = nodeTool(c);
  return tool ? [tool, '-V'] : undefined;
}

/**
 * The command that writes `path` (stdin when none), compressed, to stdout on the node (one process, no shell, no
 * pipe); with no codec, `cat`.
 */
export function nodeCompressCommand(c: Compression, path?: string): string[] {
  const file = path === undefined ? [] : ['--', path];
  if (c === 'zstd') return ['zstd', '-q', '-c', `-${ZSTD_LEVEL}`, ...file];
  if (c === 'gzip') return ['gzip', '-c', `-${NODE_GZIP_LEVEL}`, ...file];
  return ['cat', ...file];
}

type ZstdFactory = (options?: { params?: Record<number, number>; chunkSize?: number }) => Transform;
const zstd = zlib as unknown as {
  createZstdCompress?: ZstdFactory;
  createZstdDecompress?: (options?: { chunkSize?: number }) => Transform;
  constants: Record<string, number>;
};

/** The worker's compressor for a codec (zlib's streams run in libuv's thread pool, off the main thread). */
export function compressor(c: Compression): Transform[] {
  if (c === 'gzip') return [zlib.createGzip({ level: WORKER_GZIP_LEVEL, chunkSize: CODEC_CHUNK })];
  if (c === 'zstd') {
    if (!zstd.createZstdCompress) throw new Error('compression "zstd" needs Node.js >= 22.15 on the worker; use "gzip" or upgrade Node');
    return [zstd.createZstdCompress({ params: { [zstd.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL }, chunkSize: CODEC_CHUNK })];
  }
  return [];
}

/** The worker's decompressor for a codec; `what` names the object for the error. */
export function decompressor(c: Compression, what: string): Transform[] {
  if (c === 'gzip') return [zlib.createGunzip({ chunkSize: CODEC_CHUNK })];
  if (c === 'zstd') {
    if (!zstd.createZstdDecompress) throw new Error(`${what} is zstd-compressed; reading it needs Node.js >= 22.15 on the worker`);
    return [zstd.createZstdDecompress({ chunkSize: CODEC_CHUNK })];
  }
  return [];
}

/** zlib's codes for input that does not decode (corrupt or cut short). */
export function isCorruptData(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR' || (code?.startsWith('ZSTD_error_') ?? false);
}

/**
 * A pass-through for compressed bytes that decodes a copy on the side and counts and hashes the decoded bytes: the
 * worker learns the plain size and SHA-256 of a snapshot the node compressed, and proves at backup time that what
 * it stores decodes (a corrupt or cut-short stream fails the upload, not a restore months later). The decoder runs in
 * zlib's thread pool; its output is hashed and dropped at once, so memory stays at a chunk or two.
 */
export class DecodedMeter extends Transform {
  private readonly hash = new SnapshotHash();
  private readonly decoder: Transform;
  private decodeError: Error | undefined;

  constructor(
    codec: Compression,
    private readonly onProgress?: (plainBytes: number) => void,
  ) {
    super();
    const [decoder] = decompressor(codec, 'the snapshot stream');
    if (!decoder) throw new Error('DecodedMeter needs a codec');
    this.decoder = decoder;
    decoder.on('data', (chunk: Buffer) => {
      this.hash.update(chunk);
      this.onProgress?.(this.hash.bytes);
    });
    decoder.on('error', (err: Error) => {
      this.decodeError = new Error(`the compressed stream does not decode (${err.message})`, { cause: err });
      this.destroy(this.decodeError);
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.decodeError) return cb(this.decodeError);
    if (this.decoder.write(chunk)) cb(null, chunk);
    else this.decoder.once('drain', () => cb(this.decodeError ?? null, chunk));
  }

  override _flush(cb: TransformCallback): void {
    if (this.decodeError) return cb(this.decodeError);
    this.decoder.once('end', () => cb(this.decodeError ?? null));
    this.decoder.end();
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.decoder.destroy();
    cb(err);
  }

  get bytes(): number {
    return this.hash.bytes;
  }

  /** Only valid once the stream has ended. */
  sha256(): string {
    return this.hash.sha256();
  }

  /** Only valid once the stream has ended: the decoded bytes are a whole etcd snapshot by its SHA-256 trailer. */
  endsWithEtcdTrailer(): boolean {
    return this.hash.endsWithEtcdTrailer();
  }
}
