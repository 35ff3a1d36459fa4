/**
 * Client-side streaming encryption of backup objects: AES-256-GCM in a chunked STREAM construction (the shape used
 * by `age` and Tink's streaming AEAD). Every chunk is authenticated on its own, so a reader never releases a byte that
 * has not been verified, memory stays at about two chunks whatever the object's size, and truncation, reordering,
 * appending, or a flipped byte anywhere are all detected.
 *
 * Format (all integers big-endian):
 *
 *   header:
 *     magic            7 bytes   ASCII "LBENC1\n"
 *     key id length    1 byte    L, 1..255
 *     key id           L bytes   UTF-8, the id of the key in config (e.g. "k2026")
 *     nonce prefix     7 bytes   random, fresh for every object
 *     chunk size       4 bytes   u32, plaintext bytes per chunk (default 1 MiB = 1048576, at most MAX_CHUNK_SIZE)
 *
 *   chunks, one after another:
 *     ciphertext       0..chunkSize bytes (AES-256-GCM of the chunk's plaintext)
 *     tag              16 bytes  (GCM authentication tag)
 *
 *   For chunk i:  nonce (12 bytes) = nonce prefix (7) || i as u32 (4) || last flag (1: 0x01 on the final chunk, else 0x00)
 *                 AAD              = the complete header bytes
 *
 *   Every chunk but the last holds exactly chunkSize plaintext bytes; the last holds 0..chunkSize bytes. An empty
 *   plaintext is a single empty last chunk (just a tag), so every object has exactly one chunk with the last flag.
 *
 * What that buys:
 *   - a flipped byte in a chunk or its tag fails that chunk's tag;
 *   - the header (key id, nonce prefix, chunk size) is the AAD of every chunk, so changing it fails chunk 0;
 *   - the counter in the nonce pins each chunk to its position, so reordering, dropping or duplicating chunks fails;
 *   - the last flag in the nonce marks the end, so cutting the object at a chunk boundary (the new "last" chunk was
 *     sealed with flag 0) or appending chunks after the real last one (which was sealed with flag 1) is detected;
 *   - the chunk counter is u32, so one object holds at most 2^32 chunks (4 PiB at 1 MiB chunks).
 *
 * Why the configured key is used directly rather than a per-object derived key: AES-GCM is only safe while no
 * (key, nonce) pair ever repeats. Within one object the nonces differ by counter and flag; across objects they differ
 * by the 7-byte (56-bit) random prefix. Two objects under the same key collide with probability about n^2 / 2^57 for
 * n objects: ~7e-6 after a million objects, far beyond what a backup schedule (a few objects a day per cluster, and
 * keys rotated by id) ever produces. If volumes ever grew by orders of magnitude, the fix is to derive a per-object
 * key with HKDF from the configured key and a random salt stored in the header (what age and Tink do), as a new
 * format version (magic "LBENC2").
 *
 * The encryptor buffers one chunk ahead: it only seals a full chunk once at least one more byte has arrived, so it
 * always knows which chunk is the last. The decryptor likewise only opens a full chunk as "not last" once a byte
 * beyond it has arrived, and opens whatever remains at the end of input as the last chunk.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

const MAGIC = Buffer.from('LBENC1\n', 'latin1');
/** The 7 bytes every encrypted lifeboat object starts with (a copy; changing it changes nothing). */
export const ENCRYPTION_MAGIC: Buffer = Buffer.from(MAGIC);
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** Upper bound on the chunk size, enforced on both sides so a corrupt header cannot make the reader buffer GiBs. */
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024;

const KEY_BYTES = 32;
const TAG_BYTES = 16;
const NONCE_PREFIX_BYTES = 7;
const NONCE_BYTES = 12;
const MAX_KEY_ID_BYTES = 255;
const MAX_COUNTER = 0xffffffff;
/** magic + key id length byte; the key id follows, then FIXED_TAIL_BYTES. */
const FIXED_HEAD_BYTES = MAGIC.length + 1;
const FIXED_TAIL_BYTES = NONCE_PREFIX_BYTES + 4;
const CIPHER = 'aes-256-gcm';

/** The stored bytes are not a valid encrypted object for the key they name: corrupt, truncated, tampered with, or not ours. */
export class DecryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecryptionError';
  }
}

function nonceFor(prefix: Buffer, counter: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(NONCE_BYTES);
  prefix.copy(nonce, 0, 0, NONCE_PREFIX_BYTES);
  nonce.writeUInt32BE(counter, NONCE_PREFIX_BYTES);
  nonce[NONCE_BYTES - 1] = last ? 1 : 0;
  return nonce;
}

function checkKey(key: Buffer, what: string): KeyObject {
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
    throw new RangeError(`${what} must be ${KEY_BYTES} bytes, got ${Buffer.isBuffer(key) ? `${key.length} bytes` : typeof key}`);
  }
  return createSecretKey(key);
}

/**
 * Runs a byte-consuming state machine over each written buffer, one output chunk at a time, and stops (holding the
 * write's callback) whenever the readable side is full, resuming when the consumer reads. So a single huge write
 * does not turn into a huge readable buffer: at most about one output chunk waits to be read.
 */
abstract class ChunkedTransform extends Transform {
  private input: Buffer = Buffer.alloc(0);
  private offset = 0;
  private pending: TransformCallback | undefined;
  private blocked = false;
  private parked = false;

  /** Consumes at least one byte of `input` from `offset` (which is < input.length), emits at most one output chunk, returns the new offset. */
  protected abstract consume(input: Buffer, offset: number): number;

  protected emitOut(...bufs: Buffer[]): void {
    for (const b of bufs) if (!this.push(b)) this.blocked = true;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.input = chunk;
    this.offset = 0;
    this.pending = callback;
    // Only ever park after a push that returned false: that push cleared the readable's `reading` flag, which
    // guarantees _read is called again once the consumer has drained the buffer.
    this.blocked = false;
    this.pump();
  }

  override _read(size: number): void {
    if (this.parked) {
      this.parked = false;
      this.blocked = false;
      this.pump();
      // Parked again: we hold the write's callback, nothing else to do until the next _read.
      if (this.parked) return;
      // The write finished here. Transform decides whether to acknowledge it by comparing the readable length with
      // the one at the start of the write (before this _read's caller took its chunk off), so it may have deferred
      // the acknowledgement to a later _read that would never come: nothing was pushed since this _read, so the
      // readable still counts as `reading`. Let Transform's own _read acknowledge it now.
    }
    super._read(size);
  }

  private pump(): void {
    const callback = this.pending;
    if (!callback) return;
    try {
      while (this.offset < this.input.length) {
        if (this.blocked) {
          this.parked = true;
          return;
        }
        this.offset = this.consume(this.input, this.offset);
      }
    } catch (err) {
      this.finishWrite();
      callback(err as Error);
      return;
    }
    this.finishWrite();
    callback();
  }

  private finishWrite(): void {
    this.pending = undefined;
    this.input = Buffer.alloc(0);
    this.offset = 0;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.pending = undefined;
    this.parked = false;
    this.input = Buffer.alloc(0);
    callback(error);
  }
}

class EncryptStream extends ChunkedTransform {
  private readonly header: Buffer;
  private readonly prefix: Buffer;
  private headerSent = false;
  private readonly buf: Buffer;
  private fill = 0;
  private counter = 0;

  constructor(
    private readonly key: KeyObject,
    keyId: string,
    private readonly chunkSize: number,
  ) {
    super();
    const id = Buffer.from(keyId, 'utf8');
    this.prefix = randomBytes(NONCE_PREFIX_BYTES);
    const size = Buffer.alloc(4);
    size.writeUInt32BE(chunkSize, 0);
    this.header = Buffer.concat([MAGIC, Buffer.from([id.length]), id, this.prefix, size]);
    this.buf = Buffer.allocUnsafe(chunkSize);
  }

  private seal(plain: Buffer, last: boolean): void {
    if (this.counter > MAX_COUNTER) {
      throw new RangeError(`object too large to encrypt: more than 2^32 chunks of ${this.chunkSize} bytes`);
    }
    const cipher = createCipheriv(CIPHER, this.key, nonceFor(this.prefix, this.counter, last), { authTagLength: TAG_BYTES });
    cipher.setAAD(this.header);
    const ct = cipher.update(plain);
    cipher.final();
    this.counter++;
    if (!this.headerSent) {
      this.headerSent = true;
      this.emitOut(Buffer.from(this.header));
    }
    this.emitOut(ct, cipher.getAuthTag());
  }

  protected consume(input: Buffer, offset: number): number {
    // A full buffered chunk plus at least one more byte: that chunk is not the last.
    if (this.fill === this.chunkSize) {
      this.seal(this.buf, false);
      this.fill = 0;
      return offset;
    }
    // Nothing buffered and more than a whole chunk available: seal straight from the input, no copy.
    if (this.fill === 0 && input.length - offset > this.chunkSize) {
      this.seal(input.subarray(offset, offset + this.chunkSize), false);
      return offset + this.chunkSize;
    }
    const n = Math.min(this.chunkSize - this.fill, input.length - offset);
    input.copy(this.buf, this.fill, offset, offset + n);
    this.fill += n;
    return offset + n;
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.seal(this.buf.subarray(0, this.fill), true);
      this.fill = 0;
    } catch (err) {
      callback(err as Error);
      return;
    }
    callback();
  }
}

function describeId(id: string): string {
  return JSON.stringify(id);
}

class DecryptStream extends ChunkedTransform {
  private phase: 'header' | 'chunks' = 'header';
  private readonly head = Buffer.alloc(FIXED_HEAD_BYTES + MAX_KEY_ID_BYTES + FIXED_TAIL_BYTES);
  private headFill = 0;
  private header = Buffer.alloc(0);
  private keyId = '';
  private key: KeyObject | undefined;
  private prefix = Buffer.alloc(0);
  private chunkSize = 0;
  private buf = Buffer.alloc(0);
  private fill = 0;
  private counter = 0;

  constructor(private readonly keyring: (keyId: string) => Buffer | undefined) {
    super();
  }

  private headerNeeds(): number {
    return this.headFill < FIXED_HEAD_BYTES ? FIXED_HEAD_BYTES : FIXED_HEAD_BYTES + this.head[MAGIC.length] + FIXED_TAIL_BYTES;
  }

  private consumeHeader(input: Buffer, offset: number): number {
    const n = Math.min(this.headerNeeds() - this.headFill, input.length - offset);
    input.copy(this.head, this.headFill, offset, offset + n);
    this.headFill += n;
    const seen = Math.min(this.headFill, MAGIC.length);
    if (!this.head.subarray(0, seen).equals(MAGIC.subarray(0, seen))) {
      throw new DecryptionError('not an encrypted lifeboat object (it does not start with the LBENC1 header)');
    }
    if (this.headFill >= FIXED_HEAD_BYTES && this.head[MAGIC.length] === 0) {
      throw new DecryptionError('not a valid encrypted lifeboat object: its header has an empty key id');
    }
    if (this.headFill === FIXED_HEAD_BYTES + this.head[MAGIC.length] + FIXED_TAIL_BYTES) this.parseHeader();
    return offset + n;
  }

  private parseHeader(): void {
    const idLength = this.head[MAGIC.length];
    this.header = Buffer.from(this.head.subarray(0, this.headFill));
    this.keyId = this.header.toString('utf8', FIXED_HEAD_BYTES, FIXED_HEAD_BYTES + idLength);
    this.prefix = this.header.subarray(FIXED_HEAD_BYTES + idLength, FIXED_HEAD_BYTES + idLength + NONCE_PREFIX_BYTES);
    this.chunkSize = this.header.readUInt32BE(FIXED_HEAD_BYTES + idLength + NONCE_PREFIX_BYTES);
    if (this.chunkSize < 1 || this.chunkSize > MAX_CHUNK_SIZE) {
      throw new DecryptionError(
        `the object is corrupt or was tampered with: its header declares a chunk size of ${this.chunkSize} bytes (valid: 1..${MAX_CHUNK_SIZE})`,
      );
    }
    const key = this.keyring(this.keyId);
    if (key === undefined) {
      throw new DecryptionError(
        `wrong key id: object was encrypted with key ${describeId(this.keyId)}, which is not a configured key; add the key with that id under encryptionKeys to read it`,
      );
    }
    this.key = checkKey(key, `the key configured as ${describeId(this.keyId)}`);
    this.buf = Buffer.allocUnsafe(this.chunkSize + TAG_BYTES);
    this.phase = 'chunks';
  }

  /** The chunk's plaintext, or undefined if it does not authenticate as chunk `counter` with that last flag. */
  private open(sealed: Buffer, counter: number, last: boolean): Buffer | undefined {
    const decipher = createDecipheriv(CIPHER, this.key!, nonceFor(this.prefix, counter, last), { authTagLength: TAG_BYTES });
    decipher.setAAD(this.header);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const plain = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
    try {
      decipher.final();
    } catch {
      return undefined;
    }
    return plain;
  }

  private authFailure(counter: number, final: boolean): DecryptionError {
    const where = final ? `chunk ${counter}, the last in the object,` : `chunk ${counter}`;
    let message = `the object is corrupt or was tampered with (${where} failed authentication)`;
    if (final) message += '; the object may also be truncated or have bytes appended';
    if (counter === 0) {
      message += `; if every object fails like this, the key configured as ${describeId(this.keyId)} is not the key it was encrypted with`;
    }
    return new DecryptionError(message);
  }

  /** A full chunk with more bytes after it: it must be a non-last chunk. */
  private openMiddle(sealed: Buffer): void {
    if (this.counter > MAX_COUNTER) throw this.authFailure(this.counter, false);
    const plain = this.open(sealed, this.counter, false);
    if (!plain) {
      if (this.open(sealed, this.counter, true)) {
        throw new DecryptionError(
          `the object was tampered with: data follows its final chunk (chunk ${this.counter}); bytes were appended after the end`,
        );
      }
      throw this.authFailure(this.counter, false);
    }
    this.counter++;
    this.emitOut(plain);
  }

  protected consume(input: Buffer, offset: number): number {
    if (this.phase === 'header') return this.consumeHeader(input, offset);
    const sealedSize = this.chunkSize + TAG_BYTES;
    if (this.fill === sealedSize) {
      this.openMiddle(this.buf);
      this.fill = 0;
      return offset;
    }
    if (this.fill === 0 && input.length - offset > sealedSize) {
      this.openMiddle(input.subarray(offset, offset + sealedSize));
      return offset + sealedSize;
    }
    const n = Math.min(sealedSize - this.fill, input.length - offset);
    input.copy(this.buf, this.fill, offset, offset + n);
    this.fill += n;
    return offset + n;
  }

  private finish(): void {
    if (this.phase === 'header') {
      throw new DecryptionError(
        this.headFill === 0
          ? 'the object is truncated: it is empty (an encrypted object has at least a header and one chunk)'
          : `the object is truncated: it ends inside its header, after ${this.headFill} bytes`,
      );
    }
    const sealedSize = this.chunkSize + TAG_BYTES;
    if (this.fill === 0) {
      throw new DecryptionError(
        this.counter === 0
          ? 'the object is truncated: it ends right after its header, before the first chunk'
          : `the object is truncated: it ends after chunk ${this.counter - 1}, which is not the final chunk`,
      );
    }
    if (this.fill < TAG_BYTES) {
      throw new DecryptionError(
        `the object is truncated: it ends ${this.fill} bytes into chunk ${this.counter}, before that chunk's authentication tag`,
      );
    }
    if (this.counter > MAX_COUNTER) throw this.authFailure(this.counter, true);
    const sealed = this.buf.subarray(0, this.fill);
    const plain = this.open(sealed, this.counter, true);
    if (!plain) {
      if (this.fill === sealedSize && this.open(sealed, this.counter, false)) {
        throw new DecryptionError(`the object is truncated: it ends after chunk ${this.counter}, which is not the final chunk`);
      }
      throw this.authFailure(this.counter, true);
    }
    this.counter++;
    this.fill = 0;
    this.emitOut(plain);
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.finish();
    } catch (err) {
      callback(err as Error);
      return;
    }
    callback();
  }
}

/**
 * A Transform that encrypts whatever is written to it into the format above, with `key` (32 bytes) named `keyId` in
 * the header. Throws at once (RangeError) on a bad key, key id or chunk size: those are caller bugs, not data errors.
 */
export function createEncryptStream(key: Buffer, keyId: string, options?: { chunkSize?: number }): Transform {
  const keyObject = checkKey(key, 'the encryption key');
  const idBytes = typeof keyId === 'string' ? Buffer.byteLength(keyId, 'utf8') : 0;
  if (idBytes < 1 || idBytes > MAX_KEY_ID_BYTES) {
    throw new RangeError(`the key id must be 1..${MAX_KEY_ID_BYTES} bytes of UTF-8, got ${idBytes}`);
  }
  const chunkSize = options?.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new RangeError(`chunkSize must be an integer in 1..${MAX_CHUNK_SIZE}, got ${chunkSize}`);
  }
  return new EncryptStream(keyObject, keyId, chunkSize);
}

/**
 * A Transform that decrypts an object in the format above, emitting only authenticated plaintext. The key is looked
 * up by the id in the object's header; every failure (corrupt, tampered with, truncated, appended to, unknown key id,
 * not an encrypted object at all) is emitted as a DecryptionError on the stream. A key of the wrong length from the
 * keyring, or an error thrown by the keyring, is emitted as is (a configuration problem, not the object's).
 * What was emitted before an error was authenticated, but the object as a whole must then be treated as garbage.
 */
export function createDecryptStream(keyring: (keyId: string) => Buffer | undefined): Transform {
  return new DecryptStream(keyring);
}

/**
 * The key id named by an object's header, from a prefix of the object (the first 263 bytes always suffice). Undefined
 * if the prefix is too short or is not an encrypted lifeboat object. Not authenticated: only a hint of which key to load.
 */
export function readKeyId(header: Buffer): string | undefined {
  if (header.length < FIXED_HEAD_BYTES || !header.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const idLength = header[MAGIC.length];
  if (idLength === 0 || header.length < FIXED_HEAD_BYTES + idLength) return undefined;
  return header.toString('utf8', FIXED_HEAD_BYTES, FIXED_HEAD_BYTES + idLength);
}

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^[A-Za-z0-9+/]{43}(=)?$|^[A-Za-z0-9_-]{43}(=)?$/;

function isTextLike(raw: Buffer): boolean {
  for (const b of raw) if (!(b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f))) return false;
  return true;
}

/**
 * Reads a 32-byte key from the content of a key file or environment variable: exactly 32 raw bytes, or 64 hex
 * characters, or base64 (standard or URL-safe, padded or not) of 32 bytes, with surrounding whitespace ignored for the
 * text forms. `source` names where it came from, for the error. No message ever includes any of the content.
 *
 * 32 bytes that are all printable text are refused: a random key is that with probability ~1e-14, so it is a
 * passphrase or a truncated hex/base64 string, not a key.
 */
export function parseKey(raw: Buffer, source: string): Buffer {
  const howTo =
    'generate one with `openssl rand -base64 32 > key` (base64 of 32 random bytes; 64 hex characters or 32 raw bytes also work)';
  if (raw.length === KEY_BYTES && !isTextLike(raw)) return Buffer.from(raw);
  const text = raw.toString('latin1').trim();
  if (HEX_KEY.test(text)) return Buffer.from(text, 'hex');
  if (BASE64_KEY.test(text)) {
    const key = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
    // 43 base64 characters carry 258 bits; the last 2 must be zero for a canonical encoding of 32 bytes.
    const canonical = key.toString('base64url');
    if (key.length === KEY_BYTES && canonical === text.replace(/=$/, '').replace(/\+/g, '-').replace(/\//g, '_')) return key;
  }
  const what =
    raw.length === KEY_BYTES
      ? 'it is 32 bytes of printable text, which looks like a passphrase rather than a random key'
      : `it is ${raw.length} bytes that are neither 32 raw bytes, nor 64 hex characters, nor base64 of 32 bytes`;
  throw new Error(`the encryption key from ${source} is not a valid 256-bit key: ${what}; ${howTo}`);
}
