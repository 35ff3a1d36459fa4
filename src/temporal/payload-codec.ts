import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

/**
 * AES-256-GCM over each whole payload (metadata and data, serialized as the Payload protobuf), so the server, its
 * database and anyone reading history see only ciphertext and the key id: not the encoding, not the type, not a
 * cluster name. The key id travels in the clear in the metadata so that any key of the ring can decrypt what an
 * older key encrypted.
 *
 * Stored payload: metadata { encoding: "binary/encrypted", "encryption-key-id": <id> },
 *                 data = nonce (12 random bytes) || ciphertext || tag (16), AAD = the key id.
 * Random 96-bit nonces are safe for ~2^32 payloads per key; rotate the key id long before (a new id a year is plenty).
 */
export const ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export type KeyLookup = (keyId: string) => Promise<Buffer>;

export class EncryptionCodec implements PayloadCodec {
  private readonly keys = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly keyId: string,
    private readonly lookup: KeyLookup,
  ) {}

  private key(id: string): Promise<Buffer> {
    let k = this.keys.get(id);
    if (!k) {
      k = this.lookup(id);
      // A key that could not be read is looked up again next time (its variable may be exported by then).
      k.catch(() => this.keys.delete(id));
      this.keys.set(id, k);
    }
    return k;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = await this.key(this.keyId);
    const aad = Buffer.from(this.keyId, 'utf8');
    return payloads.map((p) => {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, nonce).setAAD(aad);
      const plain = temporal.api.common.v1.Payload.encode(p).finish();
      const data = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { encoding: Buffer.from(ENCODING), [KEY_ID_METADATA]: aad }, data };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.all(
      payloads.map(async (p) => {
        if (Buffer.from(p.metadata?.encoding ?? []).toString() !== ENCODING) return p; // written before encryption was on
        const idBytes = p.metadata?.[KEY_ID_METADATA];
        if (!idBytes || !p.data || p.data.length < NONCE_BYTES + TAG_BYTES) throw new Error('encrypted payload without key id or data');
        const id = Buffer.from(idBytes).toString('utf8');
        const key = await this.key(id);
        const data = Buffer.from(p.data);
        const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE_BYTES)).setAAD(Buffer.from(idBytes));
        decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
        let plain: Buffer;
        try {
          plain = Buffer.concat([decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)), decipher.final()]);
        } catch {
          throw new Error(
            `payload encrypted with key "${id}" does not decrypt with encryptionKeys.${id}: wrong key, or the payload was altered`,
          );
        }
        return temporal.api.common.v1.Payload.decode(plain);
      }),
    );
  }
}
