import { randomBytes } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { decryptChunks, encryptChunks, DecryptionError, ENCRYPTION_MAGIC, readKeyId, type ChunkStage } from '../../src/backup/encryption';
import { parseKey } from '../../src/backup/keyring';

const KEY = randomBytes(32);
const OTHER_KEY = randomBytes(32);
const KEY_ID = 'k2026';
const CS = 1024;
const TAG = 16;
const headerSize = (keyId = KEY_ID) => 7 + 1 + Buffer.byteLength(keyId) + 7 + 4;

/** Deterministic PRNG (mulberry32), so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits `data` into pieces of random sizes in 1..maxPiece (a copy each, as a socket would deliver). */
function randomPieces(data: Buffer, seed: number, maxPiece: number): Buffer[] {
  const rand = rng(seed);
  const out: Buffer[] = [];
  for (let i = 0; i < data.length;) {
    const n = Math.min(data.length - i, 1 + Math.floor(rand() * maxPiece));
    out.push(Buffer.from(data.subarray(i, i + n)));
    i += n;
  }
  return out;
}

function collector(): { sink: Writable; result: () => Buffer } {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(chunk);
      cb();
    },
  });
  return { sink, result: () => Buffer.concat(parts) };
}

async function run(pieces: Buffer[], stage: ChunkStage): Promise<Buffer> {
  const { sink, result } = collector();
  await pipeline(Readable.from(pieces), stage, sink);
  return result();
}

async function encrypt(data: Buffer, opts: { chunkSize?: number; key?: Buffer; keyId?: string; pieces?: Buffer[] } = {}): Promise<Buffer> {
  const chunkSize = opts.chunkSize ?? CS;
  return run(opts.pieces ?? [data], encryptChunks(opts.key ?? KEY, opts.keyId ?? KEY_ID, { chunkSize }));
}

const keyring =
  (keys: Record<string, Buffer> = { [KEY_ID]: KEY }) =>
  (id: string): Buffer | undefined =>
    keys[id];

async function decrypt(stored: Buffer, opts: { keys?: Record<string, Buffer>; pieces?: Buffer[] } = {}): Promise<Buffer> {
  return run(opts.pieces ?? [stored], decryptChunks(keyring(opts.keys)));
}

/** Decrypts expecting failure; returns the error and the plaintext that was released before it. */
async function decryptFailure(
  stored: Buffer,
  opts: { keys?: Record<string, Buffer>; pieces?: Buffer[] } = {},
): Promise<{ error: Error; released: Buffer }> {
  const { sink, result } = collector();
  try {
    await pipeline(Readable.from(opts.pieces ?? [stored]), decryptChunks(keyring(opts.keys)), sink);
  } catch (error) {
    return { error: error as Error, released: result() };
  }
  throw new Error('decryption unexpectedly succeeded');
}

function flip(buf: Buffer, at: number, mask = 0x01): Buffer {
  const copy = Buffer.from(buf);
  copy[at] = copy[at] ^ mask;
  return copy;
}

/** Byte ranges [start, end) of each sealed chunk (ciphertext + tag) of an object of `plainSize` bytes. */
function chunkRanges(plainSize: number, chunkSize = CS, keyId = KEY_ID): Array<[number, number]> {
  const n = Math.max(1, Math.ceil(plainSize / chunkSize));
  const ranges: Array<[number, number]> = [];
  let pos = headerSize(keyId);
  for (let i = 0; i < n; i++) {
    const plain = i < n - 1 ? chunkSize : plainSize - chunkSize * (n - 1);
    ranges.push([pos, pos + plain + TAG]);
    pos += plain + TAG;
  }
  return ranges;
}

const SIZES = [0, 1, CS - 1, CS, CS + 1, 3 * CS + 5];

describe('encryption format and round trip', () => {
  it.each(SIZES)('round-trips %i bytes, with the documented layout', async (size) => {
    const data = randomBytes(size);
    const stored = await encrypt(data);
    const chunks = Math.max(1, Math.ceil(size / CS));
    expect(stored.length).toBe(headerSize() + size + chunks * TAG);
    expect(stored.subarray(0, 7).toString('latin1')).toBe('LBENC1\n');
    expect(stored.subarray(0, 7).equals(ENCRYPTION_MAGIC)).toBe(true);
    expect(stored[7]).toBe(KEY_ID.length);
    expect(stored.subarray(8, 8 + KEY_ID.length).toString('utf8')).toBe(KEY_ID);
    expect(stored.readUInt32BE(headerSize() - 4)).toBe(CS);
    expect(readKeyId(stored)).toBe(KEY_ID);
    const plain = await decrypt(stored);
    expect(plain.equals(data)).toBe(true);
    // The plaintext must not appear in the output (the encryptor really encrypts).
    if (size >= 16) expect(stored.includes(data.subarray(0, 16))).toBe(false);
  });

  it.each(SIZES)('round-trips %i bytes under random write chunking on both sides', async (size) => {
    const data = randomBytes(size);
    for (const [seed, maxPiece] of [
      [1, 7],
      [2, 700],
      [3, 3 * CS],
    ] as const) {
      const stored = await encrypt(data, { pieces: randomPieces(data, seed, maxPiece) });
      const plain = await decrypt(stored, { pieces: randomPieces(stored, seed + 100, maxPiece) });
      expect(plain.equals(data)).toBe(true);
    }
  });

  it('round-trips with 1-byte writes on both sides', async () => {
    const data = randomBytes(3 * CS + 5);
    const stored = await encrypt(data, { pieces: randomPieces(data, 9, 1) });
    const plain = await decrypt(stored, { pieces: randomPieces(stored, 10, 1) });
    expect(plain.equals(data)).toBe(true);
  });

  it('round-trips 5 MiB with the default 1 MiB chunk size, written in one piece and in odd pieces', async () => {
    const data = randomBytes(5 * 1024 * 1024);
    const stored = await run([data], encryptChunks(KEY, KEY_ID));
    expect(stored.readUInt32BE(headerSize() - 4)).toBe(1024 * 1024);
    expect(stored.length).toBe(headerSize() + data.length + 5 * TAG);
    expect((await decrypt(stored)).equals(data)).toBe(true);
    expect((await decrypt(stored, { pieces: randomPieces(stored, 5, 300_000) })).equals(data)).toBe(true);
  });

  it('uses a fresh nonce prefix per object: the same input encrypts differently every time', async () => {
    const data = Buffer.alloc(2 * CS, 7);
    const a = await encrypt(data);
    const b = await encrypt(data);
    expect(a.subarray(0, headerSize() - 11).equals(b.subarray(0, headerSize() - 11))).toBe(true);
    expect(a.subarray(headerSize() - 11, headerSize() - 4).equals(b.subarray(headerSize() - 11, headerSize() - 4))).toBe(false);
    expect(a.subarray(headerSize()).equals(b.subarray(headerSize()))).toBe(false);
  });

  it('handles a UTF-8 key id and names it in the header', async () => {
    const stored = await encrypt(Buffer.from('hello'), { keyId: 'schlüssel-2026' });
    expect(readKeyId(stored)).toBe('schlüssel-2026');
    expect((await decrypt(stored, { keys: { 'schlüssel-2026': KEY } })).toString()).toBe('hello');
  });

  it('refuses bad arguments at once', () => {
    expect(() => encryptChunks(randomBytes(16), KEY_ID)).toThrow(/32 bytes/);
    expect(() => encryptChunks(KEY, '')).toThrow(/key id/);
    expect(() => encryptChunks(KEY, 'x'.repeat(256))).toThrow(/key id/);
    expect(() => encryptChunks(KEY, KEY_ID, { chunkSize: 0 })).toThrow(/chunkSize/);
    expect(() => encryptChunks(KEY, KEY_ID, { chunkSize: 1.5 })).toThrow(/chunkSize/);
  });
});

describe('readKeyId', () => {
  it('reads the key id from a header prefix, and nothing from anything else', async () => {
    const stored = await encrypt(randomBytes(10));
    expect(readKeyId(stored.subarray(0, 8 + KEY_ID.length))).toBe(KEY_ID);
    expect(readKeyId(stored.subarray(0, 8 + KEY_ID.length - 1))).toBeUndefined();
    expect(readKeyId(stored.subarray(0, 3))).toBeUndefined();
    expect(readKeyId(Buffer.alloc(0))).toBeUndefined();
    expect(readKeyId(Buffer.from('ETCD snapshot bytes, not encrypted'))).toBeUndefined();
    expect(readKeyId(flip(stored, 0))).toBeUndefined();
  });
});

describe('tamper and corruption detection', () => {
  const SIZE = 3 * CS + 5; // chunks 0,1,2 full; chunk 3 holds 5 bytes
  let data: Buffer;
  let stored: Buffer;
  let ranges: Array<[number, number]>;

  beforeAll(async () => {
    data = randomBytes(SIZE);
    stored = await encrypt(data);
    ranges = chunkRanges(SIZE);
    expect(ranges[3][1]).toBe(stored.length);
  });

  it('detects a flipped bit in every header byte', async () => {
    for (let at = 0; at < headerSize(); at++) {
      for (const mask of [0x01, 0x80]) {
        const { error, released } = await decryptFailure(flip(stored, at, mask));
        expect(error).toBeInstanceOf(DecryptionError);
        expect(released.length).toBe(0);
      }
    }
  });

  it('says an object without the magic is not an encrypted lifeboat object', async () => {
    const { error } = await decryptFailure(flip(stored, 2));
    expect(error.message).toMatch(/not an encrypted lifeboat object/);
    const plain = await decryptFailure(Buffer.from('{"header":{"cluster_id":1}} plain etcd snapshot'));
    expect(plain.error).toBeInstanceOf(DecryptionError);
    expect(plain.error.message).toMatch(/not an encrypted lifeboat object/);
  });

  it('detects a header change that keeps the key id valid (nonce prefix, chunk size) as chunk 0 failing', async () => {
    const prefixByte = headerSize() - 8;
    const { error } = await decryptFailure(flip(stored, prefixByte));
    expect(error.message).toMatch(/corrupt or was tampered with \(chunk 0 failed authentication\)/);
    const sizeByte = headerSize() - 1;
    expect((await decryptFailure(flip(stored, sizeByte))).error).toBeInstanceOf(DecryptionError);
  });

  it('detects a flipped byte in a middle chunk, releasing only the chunks before it', async () => {
    const [start, end] = ranges[1];
    for (const at of [start, start + 500, end - TAG - 1, end - TAG, end - 1]) {
      const { error, released } = await decryptFailure(flip(stored, at));
      expect(error).toBeInstanceOf(DecryptionError);
      expect(error.message).toMatch(/the object is corrupt or was tampered with \(chunk 1 failed authentication\)/);
      expect(released.equals(data.subarray(0, CS))).toBe(true);
    }
  });

  it('detects a flipped byte in the last chunk and in its tag', async () => {
    for (const at of [ranges[3][0], stored.length - 1, stored.length - TAG]) {
      const { error, released } = await decryptFailure(flip(stored, at));
      expect(error).toBeInstanceOf(DecryptionError);
      expect(error.message).toMatch(/chunk 3, the last in the object, failed authentication/);
      expect(released.equals(data.subarray(0, 3 * CS))).toBe(true);
    }
  });

  it('detects truncation at every chunk boundary', async () => {
    for (let i = 0; i < 3; i++) {
      const { error, released } = await decryptFailure(stored.subarray(0, ranges[i][1]));
      expect(error).toBeInstanceOf(DecryptionError);
      expect(error.message).toMatch(new RegExp(`truncated: it ends after chunk ${i}, which is not the final chunk`));
      expect(released.equals(data.subarray(0, i * CS))).toBe(true);
    }
    const afterHeader = await decryptFailure(stored.subarray(0, headerSize()));
    expect(afterHeader.error.message).toMatch(/truncated: it ends right after its header/);
  });

  it('detects truncation mid-chunk, inside a tag, and inside the header', async () => {
    for (const cut of [ranges[2][0] + 1, ranges[2][0] + 10, ranges[2][0] + 700, ranges[3][1] - 1, ranges[3][0] + 3]) {
      const { error } = await decryptFailure(stored.subarray(0, cut));
      expect(error).toBeInstanceOf(DecryptionError);
      expect(error.message).toMatch(/truncated/);
    }
    for (const cut of [0, 1, 7, headerSize() - 1]) {
      const { error } = await decryptFailure(stored.subarray(0, cut));
      expect(error).toBeInstanceOf(DecryptionError);
      expect(error.message).toMatch(/truncated/);
    }
  });

  it('detects appended bytes, whatever their size', async () => {
    for (const extra of [Buffer.from([0]), randomBytes(15), randomBytes(16), randomBytes(CS + TAG), randomBytes(5 * CS)]) {
      const { error } = await decryptFailure(Buffer.concat([stored, extra]));
      expect(error).toBeInstanceOf(DecryptionError);
    }
    // Re-appending an authentic chunk does not help either.
    const dup = await decryptFailure(Buffer.concat([stored, stored.subarray(...ranges[3])]));
    expect(dup.error).toBeInstanceOf(DecryptionError);
  });

  it('says data follows the final chunk when a full last chunk is followed by more bytes', async () => {
    const exact = await encrypt(randomBytes(2 * CS));
    for (const extra of [Buffer.from([1]), randomBytes(3 * CS)]) {
      const { error } = await decryptFailure(Buffer.concat([exact, extra]));
      expect(error).toBeInstanceOf(DecryptionError);
      expect(error.message).toMatch(/data follows its final chunk/);
    }
  });

  it('detects reordered, dropped and duplicated chunks', async () => {
    const head = stored.subarray(0, headerSize());
    const c = ranges.map((r) => stored.subarray(...r));
    const variants = [
      [head, c[0], c[2], c[1], c[3]], // swap 1 and 2
      [head, c[1], c[0], c[2], c[3]], // swap 0 and 1
      [head, c[0], c[1], c[3]], // drop 2
      [head, c[0], c[1], c[1], c[2], c[3]], // duplicate 1
      [head, c[0], c[1], c[2]], // drop the last
    ];
    for (const parts of variants) {
      const { error } = await decryptFailure(Buffer.concat(parts));
      expect(error).toBeInstanceOf(DecryptionError);
    }
  });

  it('rejects chunks spliced in from another object under the same key', async () => {
    const other = await encrypt(randomBytes(SIZE));
    const spliced = Buffer.concat([stored.subarray(0, ranges[1][0]), other.subarray(...ranges[1]), stored.subarray(ranges[1][1])]);
    const { error } = await decryptFailure(spliced);
    expect(error.message).toMatch(/chunk 1 failed authentication/);
  });

  it('fails with the wrong key under the right id, pointing at the key', async () => {
    const { error, released } = await decryptFailure(stored, { keys: { [KEY_ID]: OTHER_KEY } });
    expect(error).toBeInstanceOf(DecryptionError);
    expect(error.message).toMatch(/chunk 0 failed authentication.*key configured as "k2026" is not the key it was encrypted with/);
    expect(released.length).toBe(0);
  });

  it('fails on an unknown key id, naming it', async () => {
    const { error } = await decryptFailure(stored, { keys: { k2025: KEY } });
    expect(error).toBeInstanceOf(DecryptionError);
    expect(error.message).toMatch(/wrong key id: object was encrypted with key "k2026"/);
  });

  it('fails with keyring problems as they are (configuration problems, not DecryptionError)', async () => {
    await expect(
      pipeline(
        Readable.from([stored]),
        decryptChunks(() => Buffer.alloc(31)),
        collector().sink,
      ),
    ).rejects.toThrow(/32 bytes/);
    const thrower = decryptChunks(() => {
      throw new Error('keyring exploded');
    });
    await expect(pipeline(Readable.from([stored]), thrower, collector().sink)).rejects.toThrow('keyring exploded');
  });

  it('fails the pipeline with the DecryptionError, with nothing released for garbage input', async () => {
    const { error, released } = await decryptFailure(Buffer.from('garbage that is no header at all'));
    expect(error).toBeInstanceOf(DecryptionError);
    expect(released.length).toBe(0);
  });

  it('rejects an empty object as truncated', async () => {
    const { error } = await decryptFailure(Buffer.alloc(0), { pieces: [] });
    expect(error).toBeInstanceOf(DecryptionError);
    expect(error.message).toMatch(/truncated/);
  });
});

describe('parseKey', () => {
  const key = randomBytes(32);

  it('accepts 32 raw bytes, 64 hex characters and base64 of 32 bytes, trimming surrounding whitespace', () => {
    expect(parseKey(Buffer.from(key), 'test').equals(key)).toBe(true);
    expect(parseKey(Buffer.from(key.toString('hex')), 'test').equals(key)).toBe(true);
    expect(parseKey(Buffer.from(`  ${key.toString('hex').toUpperCase()}\n`), 'test').equals(key)).toBe(true);
    expect(parseKey(Buffer.from(key.toString('base64') + '\n'), 'test').equals(key)).toBe(true);
    expect(parseKey(Buffer.from(`\t${key.toString('base64')}\r\n`), 'test').equals(key)).toBe(true);
    expect(parseKey(Buffer.from(key.toString('base64').replace(/=$/, '')), 'test').equals(key)).toBe(true);
    expect(parseKey(Buffer.from(key.toString('base64url')), 'test').equals(key)).toBe(true);
  });

  it('returns a copy, not the caller buffer', () => {
    const raw = Buffer.from(key);
    const parsed = parseKey(raw, 'test');
    raw.fill(0);
    expect(parsed.equals(key)).toBe(true);
  });

  it('rejects everything else, naming the source and how to generate a key, without echoing the content', () => {
    const secretish = 'correct-horse-battery-staple-XYZ';
    const bad: Buffer[] = [
      Buffer.alloc(0),
      Buffer.from('\n'),
      randomBytes(31),
      randomBytes(33),
      Buffer.from(secretish), // 32 printable bytes: a passphrase, not a key
      Buffer.from(`${secretish}\n`),
      Buffer.from(key.toString('hex').slice(0, 62)),
      Buffer.from(key.toString('hex') + 'ab'),
      Buffer.from(key.toString('hex').slice(0, 63) + 'g'),
      Buffer.from(randomBytes(31).toString('base64')),
      Buffer.from(randomBytes(33).toString('base64')),
      Buffer.from(key.toString('base64').slice(0, 42) + 'B='), // non-canonical: stray low bits
      Buffer.from(key.toString('base64').slice(0, 20) + ' ' + key.toString('base64').slice(20)),
    ];
    for (const raw of bad) {
      let caught: Error | undefined;
      try {
        parseKey(raw, 'encryptionKeys.k1 (file /etc/lifeboat/k1.key)');
      } catch (err) {
        caught = err as Error;
      }
      expect(caught).toBeInstanceOf(Error);
      const message = caught!.message;
      expect(message).toContain('encryptionKeys.k1 (file /etc/lifeboat/k1.key)');
      expect(message).toContain('openssl rand -base64 32 > key');
      const text = raw.toString('latin1').trim();
      if (text.length >= 6) {
        for (let i = 0; i + 6 <= text.length; i += 3) expect(message).not.toContain(text.slice(i, i + 6));
      }
      expect(message).not.toContain(raw.toString('hex').slice(0, 12) || 'never-matches');
    }
  });
});

describe('bounded memory and backpressure', () => {
  /** Lazily yields `total` bytes in 64 KiB buffers; nothing is kept. */
  function lazySource(total: number, onRead?: () => void): Readable {
    let sent = 0;
    const block = randomBytes(64 * 1024);
    return new Readable({
      highWaterMark: 64 * 1024,
      read() {
        onRead?.();
        if (sent >= total) {
          this.push(null);
          return;
        }
        const n = Math.min(block.length, total - sent);
        sent += n;
        // A fresh buffer each time, like a network source.
        this.push(Buffer.from(block.subarray(0, n)));
      },
    });
  }

  it('encrypts and decrypts 64 MiB with the transforms never holding more than a few chunks', async () => {
    const chunk = 1024 * 1024;
    const discard = () =>
      new Writable({
        write(_c: Buffer, _e, cb) {
          cb();
        },
      });
    // Warm up (crypto, stream machinery, the heap) so the measurement below sees steady state.
    await pipeline(lazySource(8 * chunk), encryptChunks(KEY, KEY_ID), decryptChunks(keyring()), discard());

    const total = 64 * chunk;
    let sent = 0;
    let plainBytes = 0;
    let maxInFlight = 0;
    const rssBefore = process.memoryUsage().rss;
    let rssMax = rssBefore;
    // Sampled from inside the data flow: timers may not get a turn while the pipeline runs.
    // The worker collects Buffer garbage once per uploaded part (src/worker-memory.ts): V8 alone lets external
    // memory pile up (Node 24 lets ~100 MiB of garbage wait), which says nothing about what the stages hold.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (o: { type: 'minor' | 'major' }) => void;
    let samples = 0;
    const sample = () => {
      // What has left the source but not yet reached the sink is what the stages (and the streams between them) hold.
      maxInFlight = Math.max(maxInFlight, sent - plainBytes);
      rssMax = Math.max(rssMax, process.memoryUsage().rss);
      if (++samples % 5 === 0) gc({ type: samples % 40 === 0 ? 'major' : 'minor' });
    };
    const sink = new Writable({
      write(c: Buffer, _e, cb) {
        plainBytes += c.length;
        sample();
        cb();
      },
    });
    const source = lazySource(total, sample);
    source.on('data', (c: Buffer) => (sent += c.length));
    await pipeline(source, encryptChunks(KEY, KEY_ID), decryptChunks(keyring()), sink);
    sample();
    expect(plainBytes).toBe(total);
    // One chunk buffered in each direction, plus the streams' own small buffers.
    expect(maxInFlight).toBeLessThanOrEqual(3 * chunk);
    // Lenient: garbage collection is lazy, but buffering the whole stream would add well over 64 MiB (twice, here).
    expect(rssMax - rssBefore).toBeLessThan(64 * 1024 * 1024);
  }, 60_000);

  it('keeps a single huge write from piling up output when the consumer is slow', async () => {
    const chunkSize = 64 * 1024;
    const data = randomBytes(8 * 1024 * 1024);
    let encrypted = 0;
    let decrypted = 0;
    let received = 0;
    let maxEncAhead = 0;
    let maxDecAhead = 0;
    const counted = (stage: ChunkStage, count: (n: number) => void): ChunkStage =>
      async function* (source) {
        for await (const c of stage(source)) {
          count(c.length);
          yield c;
        }
      };
    const parts: Buffer[] = [];
    const slowSink = new Writable({
      highWaterMark: 1024,
      write(c: Buffer, _e, cb) {
        received += c.length;
        parts.push(c);
        setImmediate(cb);
      },
    });
    await pipeline(
      Readable.from([data]),
      counted(encryptChunks(KEY, KEY_ID, { chunkSize }), (n) => (encrypted += n)),
      counted(decryptChunks(keyring()), (n) => {
        decrypted += n;
        maxEncAhead = Math.max(maxEncAhead, encrypted - decrypted);
        maxDecAhead = Math.max(maxDecAhead, decrypted - received);
      }),
      slowSink,
    );
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    // Pulled one chunk at a time: the 8 MiB write never turns into megabytes of sealed or opened chunks waiting.
    expect(maxEncAhead).toBeLessThanOrEqual(3 * (chunkSize + TAG));
    expect(maxDecAhead).toBeLessThanOrEqual(3 * chunkSize);
  }, 30_000);

  it('never stalls, whatever the chunk size, write sizes, buffer sizes and consumer speed', async () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rand = rng(seed);
      const chunkSize = [7, 100, 1024, 65536][seed % 4];
      const data = randomBytes(Math.floor(rand() * 20 * chunkSize) + (seed % 3 === 0 ? chunkSize * 4 - (seed % 4 === 0 ? 0 : 1) : 0));
      const maxPiece = [1, 13, chunkSize, 3 * chunkSize + 1, 1 << 20][seed % 5];
      const pieces = maxPiece === 1 && data.length > 5000 ? [data] : randomPieces(data, seed, maxPiece);
      const slow = seed % 2 === 0;
      const parts: Buffer[] = [];
      const sink = new Writable({
        highWaterMark: 1 + Math.floor(rand() * 100_000),
        write(c: Buffer, _e, cb) {
          parts.push(c);
          if (slow) setImmediate(cb);
          else cb();
        },
      });
      const middle = new PassThrough({ highWaterMark: 1 + Math.floor(rand() * 100_000) });
      await pipeline(Readable.from(pieces), encryptChunks(KEY, KEY_ID, { chunkSize }), middle, decryptChunks(keyring()), sink);
      expect(Buffer.concat(parts).equals(data)).toBe(true);
    }
  }, 60_000);
});
