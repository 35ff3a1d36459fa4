import { execFile, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { zstdDecompressSync } from 'node:zlib';
import { serverBinaries } from '../../src/devserver/binaries';
import { freePort, startProcess, waitFor, type ManagedProcess } from '../../src/devserver/processes';
import { nodeCompressCommand } from '../../src/backup/codec';
import { followSnapshotCommand, parseFollowHeader, readFirstLine, type FollowHeader } from '../../src/backup/follow-snapshot';
import { SnapshotHash } from '../../src/backup/snapshot-hash';

/**
 * The node's half of SSH mode's streamed snapshot (src/backup/follow-snapshot.ts), run here as the node would run it,
 * against a real etcd: its header, the bytes it sends while etcdctl writes, and each way it refuses to stream.
 */
const run = promisify(execFile);
let dir: string;
let etcd: ManagedProcess;
let etcdctl: string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-follow-'));
  const bins = (await serverBinaries()).etcd['3.6'];
  const [client, peer] = [await freePort(), await freePort()];
  etcd = startProcess(
    'etcd',
    join(bins, 'etcd'),
    [
      '--data-dir',
      join(dir, 'data'),
      '--listen-client-urls',
      `http://127.0.0.1:${client}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${client}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-cluster',
      `default=http://127.0.0.1:${peer}`,
    ],
    { logFile: join(dir, 'etcd.log') },
  );
  etcdctl = [join(bins, 'etcdctl'), `--endpoints=127.0.0.1:${client}`];
  await waitFor(
    'etcd',
    async () => (await run(etcdctl[0], [...etcdctl.slice(1), 'endpoint', 'health'])).stdout.includes('healthy'),
    20_000,
  );
  // Enough data that the save takes a while and is read while it grows (~40 MiB of random values).
  const value = () => Math.random().toString(36).repeat(2000).slice(0, 40_000);
  for (let i = 0; i < 1000; i += 20) {
    await Promise.all(
      Array.from({ length: 20 }, (_, j) => run(etcdctl[0], [...etcdctl.slice(1), 'put', `/registry/configmaps/k${i + j}`, value()])),
    );
  }
}, 180_000);

afterAll(async () => {
  await etcd?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Runs the command locally, as sshd would on the node: its header, then the rest of stdout. */
async function follow(runDir: string, ctl = etcdctl, attempts = 8) {
  const argv = followSnapshotCommand({
    etcdctl: ctl,
    runDir,
    path: join(runDir, 'snapshot.db'),
    compress: nodeCompressCommand('zstd'),
    attempts,
  });
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const header: FollowHeader = parseFollowHeader(await readFirstLine(child.stdout));
  return { header, rest: child.stdout, exited, stderr: () => stderr };
}

/** The stream's bytes, decoded; nothing at all (not even a zstd frame) is an empty buffer. */
async function decoded(stream: Readable): Promise<Buffer> {
  const raw: Buffer[] = [];
  for await (const c of stream) raw.push(c as Buffer);
  return raw.length ? zstdDecompressSync(Buffer.concat(raw)) : Buffer.alloc(0);
}

test('streams the snapshot while etcdctl writes it: its revision pinned, the bytes those of the finished file, etcd trailer included', async () => {
  const runDir = join(dir, 'run-a');
  const revisionNow = JSON.parse((await run(etcdctl[0], [...etcdctl.slice(1), 'endpoint', 'status', '-w', 'json'])).stdout)[0].Status.header
    .revision as number;
  const { header, rest, exited } = await follow(runDir);
  expect(header).toMatchObject({ kind: 'streaming', revision: String(revisionNow), serverVersion: '3.6.16' });
  const bytes = await decoded(rest);
  expect(await exited).toBe(0);
  const file = await readFile(join(runDir, 'snapshot.db'));
  expect(bytes.length).toBe(file.length);
  expect(bytes.equals(file)).toBe(true);
  const hash = new SnapshotHash();
  hash.update(bytes);
  expect(hash.endsWithEtcdTrailer()).toBe(true);
  // etcd's own reader agrees on the revision the header named.
  const utl = join((await serverBinaries()).etcd['3.6'], 'etcdutl');
  const status = JSON.parse((await run(utl, ['snapshot', 'status', '-w', 'json', join(runDir, 'snapshot.db')])).stdout);
  expect(String(status.revision)).toBe(String(revisionNow));
  await expect(stat(join(runDir, 'snapshot.db.part'))).rejects.toThrow();

  // A retried attempt of the same run finds the whole file and says so, sending nothing else.
  const again = await follow(runDir);
  expect(again.header).toEqual({ kind: 'file' });
  expect((await decoded(again.rest)).length).toBe(0);
}, 120_000);

test('etcd written to at every start: no stream, the last save finished into the file', async () => {
  // etcdctl as a busy cluster looks: every `endpoint status` lands after a write, so the revision always moves.
  const busy = join(dir, 'busy-etcdctl');
  await writeFile(
    busy,
    `#!/bin/sh\ncase " $* " in *" endpoint status "*) "$0.real" ${etcdctl.slice(1).join(' ')} put /busy "$$" >/dev/null ;; esac\nexec "$0.real" "$@"\n`,
  );
  await chmod(busy, 0o755);
  await run('ln', ['-sf', etcdctl[0], `${busy}.real`]);
  const runDir = join(dir, 'run-b');
  const { header, rest, exited } = await follow(runDir, [busy, ...etcdctl.slice(1)], 3);
  expect(header).toMatchObject({ kind: 'unpinned', attempts: 3, saved: 0 });
  expect(header.kind === 'unpinned' && header.moves.split(' ').length).toBe(3);
  expect((await decoded(rest)).length).toBe(0);
  expect(await exited).toBe(0);
  expect((await stat(join(runDir, 'snapshot.db'))).size).toBeGreaterThan(20 * 1024 * 1024);
}, 120_000);

test('an etcd that does not answer: no stream, and why', async () => {
  const { header, exited, stderr } = await follow(join(dir, 'run-c'), [
    etcdctl[0],
    `--endpoints=127.0.0.1:${await freePort()}`,
    '--dial-timeout=1s',
  ]);
  expect(header.kind).toBe('failed');
  expect(await exited).toBe(0);
  expect(stderr()).toMatch(/connection refused|deadline|unavailable/i);
}, 60_000);

test('etcd gone as the save starts (no byte within the bound): etcdctl stopped, the script fails and says why', async () => {
  // etcdctl as it is when etcd died under it: its empty .part file made, then waiting out its command timeout.
  const stalled = join(dir, 'stalled-etcdctl');
  await writeFile(
    stalled,
    `#!/bin/sh\ncase " $* " in *" snapshot save "*) for a; do last=$a; done; : >"$last.part"; exec sleep 600 ;; esac\nexec "$0.real" "$@"\n`,
  );
  await chmod(stalled, 0o755);
  await run('ln', ['-sf', etcdctl[0], `${stalled}.real`]);
  const runDir = join(dir, 'run-d');
  const argv = followSnapshotCommand({
    etcdctl: [stalled, ...etcdctl.slice(1)],
    runDir,
    path: join(runDir, 'snapshot.db'),
    attempts: 8,
    firstBytesWithinSeconds: 2,
  });
  const started = Date.now();
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(await readFirstLine(child.stdout)).toBe('');
  expect(await exited).toBe(3);
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(stderr).toMatch(/etcd did not start sending the snapshot within 2 s of etcdctl snapshot save starting/);
  // The stand-in for etcdctl was stopped, not left waiting.
  const pid = (await readFile(join(runDir, 'save.pid'), 'utf8')).trim();
  await expect(run('kill', ['-0', pid])).rejects.toThrow();
}, 30_000);

test('headers: each kind parsed, anything else refused', () => {
  expect(parseFollowHeader('lifeboat-snapshot streaming revision=9007199254740993 version=3.5.35 attempts=2')).toEqual({
    kind: 'streaming',
    revision: '9007199254740993',
    serverVersion: '3.5.35',
    attempts: 2,
  });
  expect(parseFollowHeader('lifeboat-snapshot unpinned attempts=8 moves= 5->6 6->9 saved=0')).toEqual({
    kind: 'unpinned',
    attempts: 8,
    moves: '5->6 6->9',
    saved: 0,
  });
  expect(() => parseFollowHeader('PK\u0003\u0004')).toThrow(/not its header/);
  expect(() => parseFollowHeader('lifeboat-snapshot streaming version=3.6.0')).toThrow(/no revision/);
});
