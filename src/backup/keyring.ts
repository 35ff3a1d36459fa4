import type { Config } from '../config/schema';
import { MissingSecretError, resolveSecret, describeSecretRef } from '../secrets';
import { KEY_BYTES } from './encryption-format';

/** Loads the 32-byte key for a key id from its reference in config; never logs or returns it beyond the caller. */
export async function loadEncryptionKey(config: Config, keyId: string): Promise<Buffer> {
  const ref = config.encryptionKeys[keyId];
  if (!ref) {
    const known = Object.keys(config.encryptionKeys).join(', ') || 'none';
    throw new MissingSecretError(
      `encryptionKeys.${keyId}`,
      `no key with id "${keyId}" in the config (known: ${known}); a backup encrypted with it needs that key to be decrypted`,
    );
  }
  return parseKey(await resolveSecret(ref, `encryptionKeys.${keyId}`), `encryptionKeys.${keyId} (${describeSecretRef(ref)})`);
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
