import { randomBytes } from 'node:crypto';
import { authenticateManifest, canonicalJson, signManifest } from '../../src/backup/manifest-auth';
import type { BackupManifest } from '../../src/backup/manifest';

const key = randomBytes(32);
const ring = async (id: string) => {
  if (id === 'k1') return key;
  throw new Error(`no key with id "${id}" in the config`);
};
const manifest = {
  format: 'lifeboat-backup/v1',
  cluster: 'prod',
  created: '2026-11-26T01:00:00.000Z',
  node: 'cp1',
  etcd: { hash: 1, revision: '42', totalKeys: 7, totalSize: 4096 },
  resourceCounts: { configmaps: 3, secrets: 2 },
  snapshot: {
    key: 'a',
    plainSize: 1,
    plainSha256: '0'.repeat(64),
    storedSize: 1,
    storedSha256: '0'.repeat(64),
    compression: 'gzip',
    encryption: { algorithm: 'aes-256-gcm-stream', keyId: 'k1' },
  },
  controlPlaneFiles: null,
  verified: true,
  workflow: { workflowId: 'w', runId: 'r' },
  engineVersion: '0.1.0',
} as BackupManifest;

describe('manifest authentication', () => {
  const signed = signManifest(manifest, key, 'k1');

  it('verifies a manifest as written, and reformatted (pretty, keys reordered)', async () => {
    expect(await authenticateManifest(JSON.stringify(signed, null, 2), ring)).toEqual({ status: 'authentic', keyId: 'k1' });
    const reordered = Object.fromEntries(Object.entries(signed).reverse());
    expect(await authenticateManifest(JSON.stringify(reordered), ring)).toEqual({ status: 'authentic', keyId: 'k1' });
  });

  it('catches any changed value, an added field, a changed key id, and a tag from another key', async () => {
    const forged = (m: object) => authenticateManifest(JSON.stringify(m), ring);
    expect(await forged({ ...signed, etcd: { ...signed.etcd, revision: '43' } })).toMatchObject({
      status: 'forged',
      reason: expect.stringMatching(/tag does not match/),
    });
    expect(await forged({ ...signed, resourceCounts: { ...signed.resourceCounts, secrets: 0 } })).toMatchObject({ status: 'forged' });
    expect(await forged({ ...signed, extra: true })).toMatchObject({ status: 'forged' });
    expect(await forged(signManifest(manifest, randomBytes(32), 'k1'))).toMatchObject({ status: 'forged' });
    expect(await forged({ ...signed, auth: { ...signed.auth, keyId: 'k9' } })).toMatchObject({
      status: 'unverifiable',
      reason: expect.stringMatching(/key "k9".*no key with id "k9"/),
    });
    expect(await forged({ ...signed, auth: { algorithm: 'none' } })).toMatchObject({
      status: 'forged',
      reason: expect.stringMatching(/malformed/),
    });
  });

  it('tells an unsigned manifest apart', async () => {
    expect(await authenticateManifest(JSON.stringify(manifest), ring)).toEqual({ status: 'unsigned' });
    expect(await authenticateManifest('{', ring)).toMatchObject({ status: 'forged', reason: 'not JSON' });
  });

  it('canonical JSON sorts keys at every level and keeps arrays in order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { f: 1, e: 2 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,{"e":2,"f":1}]},"b":1}');
  });
});
