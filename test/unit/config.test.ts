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

describe('config paths that reach remote commands (SSH on the node, or the worker in direct mode)', () => {
  const direct = { endpoints: ['https://10.0.0.10:2379'], caFile: '/e/ca.crt', certFile: '/e/c.crt', keyFile: '/e/c.key' };
  /** Every path a remote command is built from: each is refused unless it is a plain absolute path. */
  const FIELDS: [string, (p: string) => Record<string, unknown>][] = [
    ...['kubernetesDir', 'manifestsDir', 'pkiDir', 'etcdDataDir', 'kubeletDir', 'workDir'].map(
      (f): [string, (p: string) => Record<string, unknown>] => [`clusters[0].paths.${f}`, (p) => ({ ...cluster, paths: { [f]: p } })],
    ),
    ...['caFile', 'certFile', 'keyFile', 'etcdctl', 'etcdutl'].map((f): [string, (p: string) => Record<string, unknown>] => [
      `clusters[0].etcd.${f}`,
      (p) => ({ ...cluster, etcd: { [f]: p } }),
    ]),
    ...['caFile', 'certFile', 'keyFile', 'etcdctl', 'etcdutl', 'workDir'].map((f): [string, (p: string) => Record<string, unknown>] => [
      `clusters[0].etcd.direct.${f}`,
      (p) => ({ ...cluster, etcd: { direct: { ...direct, [f]: p } } }),
    ]),
    ['clusters[0].nodes[0].knownHostsFile', (p) => ({ ...cluster, nodes: [{ ...node, knownHostsFile: p }] })],
  ];

  it.each(FIELDS.flatMap(([field, build]) => ['/etc/kube rnetes', '/etc/kubernetes;reboot'].map((p) => [field, p, build] as const)))(
    '%s = %j is refused, naming the field',
    (field, path, build) => {
      const problems = problemsOf({ clusters: [build(path)] });
      expect(problems.join('\n')).toContain(field);
      expect(problems.join('\n')).toMatch(/absolute path|etcdctl|etcdutl|no spaces or shell characters/);
    },
  );

  it('drill folders on the worker too', () => {
    for (const p of ['/tmp/a b', '/tmp/a;b'])
      expect(problemsOf({ clusters: [cluster], drill: { scratchDir: p } }).join('\n')).toContain('drill.scratchDir');
  });
});
