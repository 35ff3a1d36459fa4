import { etcdVersionForTools, ManifestError, parseManifest, type BackupManifest } from '../../src/backup/manifest';
import { createdFromName } from '../../src/backup/import-source';

const object = {
  key: 'lifeboat/prod/etcd/x.db.gz.enc',
  plainSize: 10,
  plainSha256: 'a'.repeat(64),
  storedSize: 12,
  storedSha256: 'b'.repeat(64),
  s3Checksum: 'crc32:AAAAAA==-1',
  compression: 'gzip',
  encryption: { algorithm: 'aes-256-gcm-stream', keyId: 'k1' },
};
const manifest: BackupManifest = {
  format: 'lifeboat-backup/v1',
  cluster: 'prod',
  created: '2026-11-26T01:00:00.000Z',
  node: 'cp1',
  etcd: { hash: 123, revision: '42', totalKeys: 7, totalSize: 4096, serverVersion: '3.6.16' },
  kubernetesVersion: 'v1.34.4',
  resourceCounts: { configmaps: 3 },
  snapshot: object as BackupManifest['snapshot'],
  controlPlaneFiles: {
    ...(object as BackupManifest['snapshot']),
    key: 'lifeboat/prod/etcd/x.control-plane.tar.gz.enc',
    files: ['pki/ca.crt'],
  },
  verified: true,
  workflow: { workflowId: 'backup-prod', runId: 'r1' },
  engineVersion: '0.1.0',
};
const KEY = 'lifeboat/prod/etcd/x.manifest.json';

describe('backup manifests read from the bucket', () => {
  it('parses a manifest the engine wrote, and drops fields it does not know', () => {
    expect(parseManifest(KEY, JSON.stringify(manifest))).toEqual(manifest);
    expect(parseManifest(KEY, JSON.stringify({ ...manifest, addedLater: 1 }))).toEqual(manifest);
  });

  it('reads a manifest without a codec as uncompressed, and records each codec it names', () => {
    const { compression: _c, ...noCodec } = manifest.snapshot;
    const { compression: _a, ...archiveNoCodec } = manifest.controlPlaneFiles!;
    const old = parseManifest(KEY, JSON.stringify({ ...manifest, snapshot: noCodec, controlPlaneFiles: archiveNoCodec }));
    expect(old.snapshot.compression).toBe('none');
    expect(old.controlPlaneFiles!.compression).toBe('none');
    for (const codec of ['zstd', 'gzip', 'none'] as const)
      expect(
        parseManifest(KEY, JSON.stringify({ ...manifest, snapshot: { ...manifest.snapshot, compression: codec } })).snapshot.compression,
      ).toBe(codec);
    expect(() => parseManifest(KEY, JSON.stringify({ ...manifest, snapshot: { ...manifest.snapshot, compression: 'lz4' } }))).toThrow(
      /snapshot\.compression: /,
    );
  });

  it('refuses a corrupt one with the key and the field', () => {
    expect(() => parseManifest(KEY, '{"format": "lifeboat-backup/v1", ')).toThrow(
      new RegExp(`manifest ${KEY} is not a usable lifeboat backup manifest: not JSON`),
    );
    expect(() => parseManifest(KEY, JSON.stringify({ ...manifest, format: 'velero/v1' }))).toThrow(/unknown manifest format "velero\/v1"/);
    const broken = { ...manifest, etcd: { ...manifest.etcd, revision: 'many' }, snapshot: { ...manifest.snapshot, plainSha256: 'xyz' } };
    let err: unknown;
    try {
      parseManifest(KEY, JSON.stringify(broken));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ManifestError);
    expect((err as ManifestError).problems).toEqual([
      expect.stringMatching(/^etcd\.revision: expected an etcd revision/),
      expect.stringMatching(/^snapshot\.plainSha256: expected a hex SHA-256/),
    ]);
    const { snapshot: _gone, ...noSnapshot } = manifest;
    expect(() => parseManifest(KEY, JSON.stringify(noSnapshot))).toThrow(/snapshot: expected object \(missing\)/);
  });
});

describe('imported backups (`lifeboat backup import`)', () => {
  const { node: _node, kubernetesVersion: _k, ...unknownOrigin } = manifest;
  const imported = {
    ...unknownOrigin,
    etcd: { hash: 123, revision: '42', totalKeys: 7, totalSize: 4096, storageVersion: '3.6.0' },
    controlPlaneFiles: null,
    source: { kind: 'imported', from: 'etcd-backups/2026-11-25-09-45', importedAt: '2026-11-26T04:00:00.000Z', createdFrom: 'name' },
  };

  it('parses a manifest marked imported, without node, Kubernetes version or control-plane archive', () => {
    const parsed = parseManifest(KEY, JSON.stringify(imported));
    expect(parsed.source).toEqual(imported.source);
    expect(parsed.node).toBeUndefined();
    expect(parsed.controlPlaneFiles).toBeNull();
    expect(etcdVersionForTools(parsed)).toBe('3.6.0');
  });

  it('still parses manifests written before imports existed (no source: a lifeboat backup)', () => {
    const parsed = parseManifest(KEY, JSON.stringify(manifest));
    expect(parsed.source).toBeUndefined();
    expect(parsed.node).toBe('cp1');
    expect(etcdVersionForTools(parsed)).toBe('3.6.16');
    // A lifeboat backup's storage version is never taken for its server's: the server's is required for tools.
    expect(etcdVersionForTools({ etcd: { ...manifest.etcd, serverVersion: undefined, storageVersion: '3.5.0' } })).toBeUndefined();
  });

  it('refuses a malformed source, naming the field', () => {
    expect(() => parseManifest(KEY, JSON.stringify({ ...imported, source: { ...imported.source, kind: 'stolen' } }))).toThrow(
      /source\.kind: /,
    );
    expect(() => parseManifest(KEY, JSON.stringify({ ...imported, source: { ...imported.source, importedAt: 'yesterday' } }))).toThrow(
      /source\.importedAt: /,
    );
  });
});

describe('runbook snapshot names (`date +%F-%H-%M`)', () => {
  it.each([
    ['etcd-backups/2026-11-25-09-45', '2026-11-25T09:45:00.000Z'],
    ['etcd-snapshot-2026-01-02-23-59.db', '2026-01-02T23:59:00.000Z'],
    ['/var/backups/2026-11-25-09-45.db', '2026-11-25T09:45:00.000Z'],
    ['2026-02-31-10-00', undefined],
    ['2026-11-25-24-00', undefined],
    ['2026-11-25', undefined],
    ['snapshot.db', undefined],
  ])('%s -> %s', (name, created) => {
    expect(createdFromName(name)).toBe(created);
  });
});
