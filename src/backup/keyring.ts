import type { Config } from '../config/schema';
import { MissingSecretError, resolveSecret, describeSecretRef } from '../secrets';
import { parseKey } from './encryption';

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
