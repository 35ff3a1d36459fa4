import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { EncryptionCodec } from '../../src/temporal/payload-codec';

describe('payload encryption codec (AES-256-GCM, key id in the metadata)', () => {
  const keys: Record<string, Buffer> = { p0: randomBytes(32), p1: randomBytes(32) };
  const lookup = async (id: string) => {
    const k = keys[id];
    if (!k) throw new Error(`encryptionKeys.${id}: no such key`);
    return k;
  };
  const input = defaultPayloadConverter.toPayload({ cluster: 'prod-eu1', reason: 'etcd corrupt' });

  it('hides everything but the key id, and decrypts with any key of the ring (rotation)', async () => {
    const [enc] = await new EncryptionCodec('p0', lookup).encode([input]);
    expect(Object.keys(enc.metadata!)).toEqual(['encoding', 'encryption-key-id']);
    expect(Buffer.from(enc.data!).toString('latin1')).not.toMatch(/prod-eu1|json/);
    // Encrypted under p0, read by a codec that now encrypts under p1.
    const [dec] = await new EncryptionCodec('p1', lookup).decode([enc]);
    expect(defaultPayloadConverter.fromPayload(dec)).toEqual({ cluster: 'prod-eu1', reason: 'etcd corrupt' });
  });

  it('passes unencrypted payloads through (history from before encryption was on)', async () => {
    expect(await new EncryptionCodec('p1', lookup).decode([input])).toEqual([input]);
  });

  it('refuses an altered payload or a key that is not the one, naming the key id', async () => {
    const [enc] = await new EncryptionCodec('p1', lookup).encode([input]);
    const altered = { ...enc, data: Buffer.from(enc.data!).map((b, i) => (i === 20 ? b ^ 1 : b)) };
    await expect(new EncryptionCodec('p1', lookup).decode([altered])).rejects.toThrow(/key "p1" does not decrypt with encryptionKeys\.p1/);
    const swapped = { ...enc, metadata: { ...enc.metadata, 'encryption-key-id': Buffer.from('p0') } };
    await expect(new EncryptionCodec('p1', lookup).decode([swapped])).rejects.toThrow(/key "p0"/);
    const unknown = { ...enc, metadata: { ...enc.metadata, 'encryption-key-id': Buffer.from('p9') } };
    await expect(new EncryptionCodec('p1', lookup).decode([unknown])).rejects.toThrow('encryptionKeys.p9: no such key');
  });
});
