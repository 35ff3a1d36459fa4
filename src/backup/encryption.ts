/**
 * Client-side streaming encryption of backup objects, in the format of ./encryption-format.ts: AES-256-GCM in
 * authenticated chunks. Both directions are plain async generators over byte chunks, used as stages of
 * `stream.pipeline` (`pipeline(source, encryptChunks(key, id), sink)`): the pipeline pulls one output chunk at a time,
 * so backpressure needs no stream internals and memory stays at about two chunks whatever the object's size.
 *
 * The encryptor buffers one chunk ahead: it only seals a full chunk once at least one more byte has arrived, so it
 * always knows which chunk is the last. The decryptor likewise only opens a full chunk as "not last" once a byte
 * beyond it has arrived, and opens whatever remains at the end of input as the last chunk.
 */
import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import {
  buildHeader,
  checkKey,
  CIPHER,
  DecryptionError,
  DEFAULT_CHUNK_SIZE,
  FIXED_HEAD_BYTES,
  FIXED_TAIL_BYTES,
  MAGIC,
  MAX_CHUNK_SIZE,
  MAX_COUNTER,
  MAX_KEY_ID_BYTES,
  nonceFor,
  NONCE_PREFIX_BYTES,
  parseHeader,
  TAG_BYTES,
  type ParsedHeader,
} from './encryption-format';

export { DecryptionError, ENCRYPTION_MAGIC, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, readKeyId } from './encryption-format';

/** A pipeline stage: bytes in, bytes out. */
export type ChunkStage = (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer>;

/**
 * Encrypts what flows through into the format, with `key` (32 bytes) named `keyId` in the header. Throws at once
 * (RangeError) on a bad key, key id or chunk size: those are caller bugs, not data errors.
 */
export function encryptChunks(key: Buffer, keyId: string, options?: { chunkSize?: number }): ChunkStage {
  const keyObject = checkKey(key, 'the encryption key');
  const idBytes = typeof keyId === 'string' ? Buffer.byteLength(keyId, 'utf8') : 0;
  if (idBytes < 1 || idBytes > MAX_KEY_ID_BYTES) {
    throw new RangeError(`the key id must be 1..${MAX_KEY_ID_BYTES} bytes of UTF-8, got ${idBytes}`);
  }
  const chunkSize = options?.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new RangeError(`chunkSize must be an integer in 1..${MAX_CHUNK_SIZE}, got ${chunkSize}`);
  }
  return async function* encrypt(source) {
    const prefix = randomBytes(NONCE_PREFIX_BYTES);
    const header = buildHeader(keyId, prefix, chunkSize);
    let counter = 0;
    const seal = (plain: Buffer, last: boolean): Buffer[] => {
      if (counter > MAX_COUNTER) throw new RangeError(`object too large to encrypt: more than 2^32 chunks of ${chunkSize} bytes`);
      const cipher = createCipheriv(CIPHER, keyObject, nonceFor(prefix, counter, last), { authTagLength: TAG_BYTES });
      cipher.setAAD(header);
      const ct = cipher.update(plain);
      cipher.final();
      counter++;
      return [ct, cipher.getAuthTag()];
    };
    yield Buffer.from(header);
    const buf = Buffer.allocUnsafe(chunkSize);
    let fill = 0;
    for await (const chunk of source) {
      let offset = 0;
      while (offset < chunk.length) {
        if (fill === chunkSize) {
          // A full buffered chunk plus at least one more byte: that chunk is not the last.
          yield* seal(buf, false);
          fill = 0;
        } else if (fill === 0 && chunk.length - offset > chunkSize) {
          // Nothing buffered and more than a whole chunk available: seal straight from the input, no copy.
          yield* seal(chunk.subarray(offset, offset + chunkSize), false);
          offset += chunkSize;
        } else {
          const n = Math.min(chunkSize - fill, chunk.length - offset);
          chunk.copy(buf, fill, offset, offset + n);
          fill += n;
          offset += n;
        }
      }
    }
    yield* seal(buf.subarray(0, fill), true);
  };
}

/**
 * Decrypts an object in the format, yielding only authenticated plaintext. The key is looked up by the id in the
 * object's header; every failure (corrupt, tampered with, truncated, appended to, unknown key id, not an encrypted
 * object at all) is thrown as a DecryptionError. A key of the wrong length from the keyring, or an error thrown by the
 * keyring, is thrown as is (a configuration problem, not the object's). What was yielded before an error was
 * authenticated, but the object as a whole must then be treated as garbage.
 */
export function decryptChunks(keyring: (keyId: string) => Buffer | undefined): ChunkStage {
  return async function* decrypt(source) {
    const head = Buffer.alloc(FIXED_HEAD_BYTES + MAX_KEY_ID_BYTES + FIXED_TAIL_BYTES);
    let headFill = 0;
    let parsed: (ParsedHeader & { key: KeyObject; buf: Buffer }) | undefined;
    let fill = 0;
    let counter = 0;
    const headerNeeds = () => (headFill < FIXED_HEAD_BYTES ? FIXED_HEAD_BYTES : FIXED_HEAD_BYTES + head[MAGIC.length] + FIXED_TAIL_BYTES);

    const readHeader = (input: Buffer, offset: number): number => {
      const n = Math.min(headerNeeds() - headFill, input.length - offset);
      input.copy(head, headFill, offset, offset + n);
      headFill += n;
      const seen = Math.min(headFill, MAGIC.length);
      if (!head.subarray(0, seen).equals(MAGIC.subarray(0, seen))) {
        throw new DecryptionError('not an encrypted lifeboat object (it does not start with the LBENC1 header)');
      }
      if (headFill >= FIXED_HEAD_BYTES && head[MAGIC.length] === 0) {
        throw new DecryptionError('not a valid encrypted lifeboat object: its header has an empty key id');
      }
      if (headFill === FIXED_HEAD_BYTES + head[MAGIC.length] + FIXED_TAIL_BYTES) {
        const h = parseHeader(Buffer.from(head.subarray(0, headFill)));
        const key = keyring(h.keyId);
        if (key === undefined) {
          throw new DecryptionError(
            `wrong key id: object was encrypted with key ${JSON.stringify(h.keyId)}, which is not a configured key; add the key with that id under encryptionKeys to read it`,
          );
        }
        parsed = {
          ...h,
          key: checkKey(key, `the key configured as ${JSON.stringify(h.keyId)}`),
          buf: Buffer.allocUnsafe(h.chunkSize + TAG_BYTES),
        };
      }
      return offset + n;
    };

    /** The chunk's plaintext, or undefined if it does not authenticate as chunk `at` with that last flag. */
    const open = (sealed: Buffer, at: number, last: boolean): Buffer | undefined => {
      const decipher = createDecipheriv(CIPHER, parsed!.key, nonceFor(parsed!.prefix, at, last), { authTagLength: TAG_BYTES });
      decipher.setAAD(parsed!.header);
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const plain = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
      try {
        decipher.final();
      } catch {
        return undefined;
      }
      return plain;
    };

    const authFailure = (at: number, final: boolean): DecryptionError => {
      const where = final ? `chunk ${at}, the last in the object,` : `chunk ${at}`;
      let message = `the object is corrupt or was tampered with (${where} failed authentication)`;
      if (final) message += '; the object may also be truncated or have bytes appended';
      if (at === 0) {
        message += `; if every object fails like this, the key configured as ${JSON.stringify(parsed!.keyId)} is not the key it was encrypted with`;
      }
      return new DecryptionError(message);
    };

    /** A full chunk with more bytes after it: it must be a non-last chunk. */
    const openMiddle = (sealed: Buffer): Buffer => {
      if (counter > MAX_COUNTER) throw authFailure(counter, false);
      const plain = open(sealed, counter, false);
      if (!plain) {
        if (open(sealed, counter, true)) {
          throw new DecryptionError(
            `the object was tampered with: data follows its final chunk (chunk ${counter}); bytes were appended after the end`,
          );
        }
        throw authFailure(counter, false);
      }
      counter++;
      return plain;
    };

    for await (const input of source) {
      let offset = 0;
      while (offset < input.length) {
        if (!parsed) {
          offset = readHeader(input, offset);
          continue;
        }
        const sealedSize = parsed.chunkSize + TAG_BYTES;
        if (fill === sealedSize) {
          yield openMiddle(parsed.buf);
          fill = 0;
        } else if (fill === 0 && input.length - offset > sealedSize) {
          yield openMiddle(input.subarray(offset, offset + sealedSize));
          offset += sealedSize;
        } else {
          const n = Math.min(sealedSize - fill, input.length - offset);
          input.copy(parsed.buf, fill, offset, offset + n);
          fill += n;
          offset += n;
        }
      }
    }

    // End of input: what remains is the last chunk.
    if (!parsed) {
      throw new DecryptionError(
        headFill === 0
          ? 'the object is truncated: it is empty (an encrypted object has at least a header and one chunk)'
          : `the object is truncated: it ends inside its header, after ${headFill} bytes`,
      );
    }
    const sealedSize = parsed.chunkSize + TAG_BYTES;
    if (fill === 0) {
      throw new DecryptionError(
        counter === 0
          ? 'the object is truncated: it ends right after its header, before the first chunk'
          : `the object is truncated: it ends after chunk ${counter - 1}, which is not the final chunk`,
      );
    }
    if (fill < TAG_BYTES) {
      throw new DecryptionError(
        `the object is truncated: it ends ${fill} bytes into chunk ${counter}, before that chunk's authentication tag`,
      );
    }
    if (counter > MAX_COUNTER) throw authFailure(counter, true);
    const sealed = parsed.buf.subarray(0, fill);
    const plain = open(sealed, counter, true);
    if (!plain) {
      if (fill === sealedSize && open(sealed, counter, false)) {
        throw new DecryptionError(`the object is truncated: it ends after chunk ${counter}, which is not the final chunk`);
      }
      throw authFailure(counter, true);
    }
    yield plain;
  };
}
