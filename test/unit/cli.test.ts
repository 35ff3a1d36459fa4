import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const cli = join(__dirname, '../../dist/src/cli/main.js');
const run = async (args: string[]) => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` (npm test does)`);
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [cli, ...args], { env: { ...process.env, LIFEBOAT_CONFIG: '' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

describe('lifeboat CLI (compiled)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-cli-'));
  });

  it('prints its version', async () => {
    const r = await run(['version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^lifeboat \d+\.\d+\.\d+ \(Temporal TypeScript SDK 1\.24\.\d+, Node v\d+/);
  });

  it('has --help for every command', async () => {
    for (const args of [
      ['--help'],
      ['config', '--help'],
      ['config', 'validate', '--help'],
      ['worker', '--help'],
      ['version', '--help'],
      ['backup', 'import', '--help'],
    ]) {
      const r = await run(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Usage: lifeboat/);
    }
  });

  it('accepts a valid config and names its clusters', async () => {
    const file = join(dir, 'ok.yaml');
    await writeFile(
      file,
      [
        'clusters:',
        '  - name: prod',
        '    nodes:',
        '      - name: cp1',
        '        host: 192.0.2.10',
        '        knownHostsFile: /root/.ssh/known_hosts',
        '    storage:',
        '      bucket: etcd-backups',
        '',
      ].join('\n'),
    );
    const r = await run(['--config', file, 'config', 'validate']);
    expect(r.stdout).toContain('valid; 1 cluster: prod (1 node)');
    expect(r.code).toBe(0);
  });

  it('lists every problem by path and exits 1 for an invalid config', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(
      file,
      [
        'clusters:',
        '  - name: prod',
        '    nodes:',
        '      - name: cp1',
        '        host: 192.0.2.10',
        '        port: "22"',
        '    storage: {}',
        '',
      ].join('\n'),
    );
    const r = await run(['--config', file, 'config', 'validate']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('clusters[0].nodes[0].port: expected number');
    expect(r.stderr).toContain('clusters[0].nodes[0].hostKey: set hostKey');
    expect(r.stderr).toContain('clusters[0].storage.bucket: expected string (missing)');
  });

  it('refuses a malformed approval before connecting (the workflow would only ignore it), naming the flag', async () => {
    const blank = await run(['recovery', 'approve', 'prod', '--by', ' ']);
    expect(blank.code).toBe(1);
    expect(blank.stderr).toMatch(/--by: expected non-empty text of at most 100 characters/);
    const long = await run(['recovery', 'reject', 'prod', '--by', 'alice', '--reason', 'r'.repeat(501)]);
    expect(long.code).toBe(1);
    expect(long.stderr).toMatch(/--reason: expected text of at most 500 characters \(got 501\)/);
  });
});
