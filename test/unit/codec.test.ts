import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { DecodedMeter, isCorruptData, nodeCompressCommand } from '../../src/backup/codec';

/** Text with repeats and some noise, in uneven chunks, as a snapshot arrives over SSH. */
const plain = Buffer.concat(
  Array.from({ length: 200 }, (_, i) => Buffer.from(`key-${i % 17} = ${randomBytes(8).toString('hex')}\n`.repeat(50))),
);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const chunks = (b: Buffer, size = 7001) =>
  Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size));

async function through(codec: 'zstd' | 'gzip', compressed: Buffer) {
  const meter = new DecodedMeter(codec);
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks(compressed)),
    meter,
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return { meter, passed: Buffer.concat(out) };
}

describe('DecodedMeter: the plain size and hash of a stream that arrives compressed', () => {
  it.each([
    ['zstd', zstdCompressSync],
    ['gzip', gzipSync],
  ] as const)('%s: passes the compressed bytes on unchanged and measures the decoded ones', async (codec, compress) => {
    const compressed = compress(plain);
    const { meter, passed } = await through(codec, compressed);
    expect(passed.equals(compressed)).toBe(true);
    expect(meter.bytes).toBe(plain.length);
    expect(meter.sha256()).toBe(sha(plain));
  });

  it.each([
    ['zstd', zstdCompressSync],
    ['gzip', gzipSync],
  ] as const)('%s: a stream cut short or corrupted fails, naming it', async (codec, compress) => {
    const compressed = compress(plain);
    await expect(through(codec, compressed.subarray(0, compressed.length - 100))).rejects.toThrow(/the compressed stream does not decode/);
    const corrupt = Buffer.from(compressed);
    corrupt[Math.floor(corrupt.length / 2)] ^= 0xff;
    corrupt[Math.floor(corrupt.length / 2) + 1] ^= 0xff;
    const err = await through(codec, corrupt).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/the compressed stream does not decode/);
    expect(isCorruptData((err as Error & { cause?: unknown }).cause)).toBe(true);
  });
});

describe('the node command', () => {
  it('reads the file itself, one process, the path after --', () => {
    expect(nodeCompressCommand('zstd', '/var/lib/x y/snapshot.db')).toEqual(['zstd', '-q', '-c', '-1', '--', '/var/lib/x y/snapshot.db']);
    expect(nodeCompressCommand('gzip', '/s.db')).toEqual(['gzip', '-c', '-1', '--', '/s.db']);
    expect(nodeCompressCommand('none', '/s.db')).toEqual(['cat', '--', '/s.db']);
  });
});
