/**
 * The format of encrypted backup objects (the streaming itself is ./encryption.ts): AES-256-GCM in a chunked STREAM construction (the shape used
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
import { createSecretKey, type KeyObject } from 'node:crypto';

export const MAGIC = Buffer.from('LBENC1\n', 'latin1');
/** The 7 bytes every encrypted lifeboat object starts with (a copy; changing it changes nothing). */
export const ENCRYPTION_MAGIC: Buffer = Buffer.from(MAGIC);
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** Upper bound on the chunk size, enforced on both sides so a corrupt header cannot make the reader buffer GiBs. */
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024;

export const KEY_BYTES = 32;
export const TAG_BYTES = 16;
export const NONCE_PREFIX_BYTES = 7;
const NONCE_BYTES = 12;
export const MAX_KEY_ID_BYTES = 255;
export const MAX_COUNTER = 0xffffffff;
/** magic + key id length byte; the key id follows, then FIXED_TAIL_BYTES. */
export const FIXED_HEAD_BYTES = MAGIC.length + 1;
export const FIXED_TAIL_BYTES = NONCE_PREFIX_BYTES + 4;
export const CIPHER = 'aes-256-gcm';

/** The stored bytes are not a valid encrypted object for the key they name: corrupt, truncated, tampered with, or not ours. */
export class DecryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecryptionError';
  }
}

export function nonceFor(prefix: Buffer, counter: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(NONCE_BYTES);
  prefix.copy(nonce, 0, 0, NONCE_PREFIX_BYTES);
  nonce.writeUInt32BE(counter, NONCE_PREFIX_BYTES);
  nonce[NONCE_BYTES - 1] = last ? 1 : 0;
  return nonce;
}

export function checkKey(key: Buffer, what: string): KeyObject {
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
    throw new RangeError(`${what} must be ${KEY_BYTES} bytes, got ${Buffer.isBuffer(key) ? `${key.length} bytes` : typeof key}`);
  }
  return createSecretKey(key);
}

/** The header for a new object: magic, key id, a fresh nonce prefix, the chunk size. */
export function buildHeader(keyId: string, prefix: Buffer, chunkSize: number): Buffer {
  const id = Buffer.from(keyId, 'utf8');
  const size = Buffer.alloc(4);
  size.writeUInt32BE(chunkSize, 0);
  return Buffer.concat([MAGIC, Buffer.from([id.length]), id, prefix, size]);
}

export interface ParsedHeader {
  header: Buffer;
  keyId: string;
  prefix: Buffer;
  chunkSize: number;
}

/** The header's fields; its bytes are the AAD of every chunk. Throws DecryptionError for an impossible chunk size. */
export function parseHeader(header: Buffer): ParsedHeader {
  const idLength = header[MAGIC.length];
  const keyId = header.toString('utf8', FIXED_HEAD_BYTES, FIXED_HEAD_BYTES + idLength);
  const prefix = header.subarray(FIXED_HEAD_BYTES + idLength, FIXED_HEAD_BYTES + idLength + NONCE_PREFIX_BYTES);
  const chunkSize = header.readUInt32BE(FIXED_HEAD_BYTES + idLength + NONCE_PREFIX_BYTES);
  if (chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new DecryptionError(
      `the object is corrupt or was tampered with: its header declares a chunk size of ${chunkSize} bytes (valid: 1..${MAX_CHUNK_SIZE})`,
    );
  }
  return { header, keyId, prefix, chunkSize };
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
