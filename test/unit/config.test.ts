import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, findCluster, loadConfigFile, parseConfig } from '../../src/config/load';

const node = {
  name: 'cp1',
  host: '192.0.2.10',
  hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMbq1c5ZQk6pVZr0yQdX3f0b2m5M6mKk0B8w3o3W2w2a',
};
const storage = { bucket: 'etcd-backups' };
const cluster = { name: 'prod', nodes: [node], storage };

function problemsOf(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected the config to be rejected');
}

describe('config', () => {
  it('fills kubeadm defaults for a minimal cluster', () => {
    const config = parseConfig({ clusters: [cluster] });
    const c = config.clusters[0];
    expect(c.nodes[0]).toMatchObject({ port: 22, user: 'root' });
    expect(c.etcd).toMatchObject({
      endpoint: 'https://127.0.0.1:2379',
      caFile: '/etc/kubernetes/pki/etcd/ca.crt',
      certFile: '/etc/kubernetes/pki/etcd/healthcheck-client.crt',
    });
    expect(c.paths).toMatchObject({
      manifestsDir: '/etc/kubernetes/manifests',
      etcdDataDir: '/var/lib/etcd',
      pkiDir: '/etc/kubernetes/pki',
    });
    expect(c.recovery.approval).toBe('required');
    expect(config.temporal).toMatchObject({ address: '127.0.0.1:7233', namespace: 'default', taskQueue: 'lifeboat' });
  });

  it('lists every problem by its path, not just the first', () => {
    const problems = problemsOf({
      clusters: [cluster, { name: 'Bad Name', nodes: [{ ...node, port: '22' }], storage }],
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^clusters\[1\]\.name: expected a lowercase name/),
        expect.stringMatching(/^clusters\[1\]\.nodes\[0\]\.port: expected number/),
      ]),
    );
    expect(problems).toHaveLength(2);
  });

  it('never lets host key checking be switched off', () => {
    const { hostKey: _omit, ...withoutKey } = node;
    expect(problemsOf({ clusters: [{ ...cluster, nodes: [withoutKey] }] })).toEqual([
      expect.stringMatching(/^clusters\[0\]\.nodes\[0\]\.hostKey: set hostKey .* host keys are never ignored/),
    ]);
  });

  it('refuses inlined secrets as unknown keys and points to references', () => {
    const problems = problemsOf({ clusters: [{ ...cluster, storage: { ...storage, secretAccessKey: 'abc' } }] });
    expect(problems).toEqual([expect.stringMatching(/^clusters\[0\]\.storage: unknown key "secretAccessKey" \(secrets are referenced/)]);
  });

  it('refuses shell metacharacters in paths and relative paths', () => {
    const problems = problemsOf({
      clusters: [{ ...cluster, paths: { etcdDataDir: '/var/lib/etcd;rm -rf /', manifestsDir: 'manifests', workDir: '/var/lib/../etc' } }],
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^clusters\[0\]\.paths\.etcdDataDir: expected an absolute path/),
        expect.stringMatching(/^clusters\[0\]\.paths\.manifestsDir: expected an absolute path/),
        expect.stringMatching(/^clusters\[0\]\.paths\.workDir: expected a path without "\.\."/),
      ]),
    );
  });

  it('checks cross references: duplicate names and unknown encryption key ids', () => {
    const problems = problemsOf({
      clusters: [cluster, { ...cluster, backup: { encryptionKey: 'k2' } }],
      encryptionKeys: { k1: { env: 'K1' } },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^clusters\[1\]\.name: duplicate cluster name "prod"/),
        expect.stringMatching(/^clusters\[1\]\.backup\.encryptionKey: unknown key id "k2".*known: k1/),
      ]),
    );
  });

  it('reports YAML syntax errors and unreadable files with the file name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-config-'));
    await writeFile(join(dir, 'bad.yaml'), 'clusters: [\n  name: x\n');
    await expect(loadConfigFile(join(dir, 'bad.yaml'))).rejects.toThrow(/bad\.yaml: YAML/);
    await expect(loadConfigFile(join(dir, 'missing.yaml'))).rejects.toThrow(/missing\.yaml: cannot read the file: ENOENT/);
  });

  it('names the known clusters when asked for an unknown one', () => {
    const config = parseConfig({ clusters: [cluster] });
    expect(() => findCluster(config, 'staging')).toThrow(/unknown cluster "staging": known clusters are prod/);
  });
});
