import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { serverBinaries } from '../../src/devserver/binaries';
import { freePort, startProcess, waitFor, type ManagedProcess } from '../../src/devserver/processes';
import { createEtcdClient, type EtcdClient } from '../../src/etcd/grpc/client';
import { countKeys, getKey } from '../../src/etcd/grpc/range';
import { snapshotStream } from '../../src/etcd/grpc/snapshot';
import { status } from '../../src/etcd/grpc/status';
import { watchKeyspace, WatchCompactedError, type WatchEvent, type WatchResult } from '../../src/etcd/grpc/watch';
import { addRevisions, compareRevisions, revisionFromJson, type Revision } from '../../src/etcd/revision';
import { createControlPlanePki, type Pki } from '../../sandbox/pki';

const run = promisify(execFile);
/** 2^53: the first revisions past it are not JS numbers. */
const TWO_53 = '9007199254740992';

interface Etcd {
  dir: string;
  endpoint: string;
  process: ManagedProcess;
  client: EtcdClient;
  /** etcdctl of this etcd's version against it, with the test PKI's client certificate. */
  ctl(args: string[], input?: string): Promise<string>;
  utl: string;
  stop(): Promise<void>;
}

let pki: Pki;
let root: string;

async function startEtcd(line: '3.5' | '3.6', name: string, restoreFrom?: { file: string; bumpRevision: string }): Promise<Etcd> {
  const bins = (await serverBinaries()).etcd[line];
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const endpoint = `127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const member = ['--name', name, '--initial-cluster', `${name}=${peer}`, '--initial-advertise-peer-urls', peer];
  const dataDir = join(dir, 'data');
  if (restoreFrom) {
    // No --skip-hash-check: the file must carry etcd's SHA-256 trailer.
    await run(join(bins, 'etcdutl'), [
      'snapshot',
      'restore',
      restoreFrom.file,
      '--data-dir',
      dataDir,
      ...member,
      '--bump-revision',
      restoreFrom.bumpRevision,
      '--mark-compacted',
    ]);
  }
  const proc = startProcess(
    `etcd-${name}`,
    join(bins, 'etcd'),
    [
      '--data-dir',
      dataDir,
      ...member,
      '--listen-peer-urls',
      peer,
      '--listen-client-urls',
      `https://${endpoint}`,
      '--advertise-client-urls',
      `https://${endpoint}`,
      '--cert-file',
      pki.etcdServerCert,
      '--key-file',
      pki.etcdServerKey,
      '--trusted-ca-file',
      pki.etcdCaCert,
      '--client-cert-auth',
      '--unsafe-no-fsync',
    ],
    { logFile: join(dir, 'etcd.log') },
  );
  const [ca, cert, key] = await Promise.all(
    [pki.etcdCaCert, pki.etcdHealthcheckClientCert, pki.etcdHealthcheckClientKey].map((f) => readFile(f)),
  );
  const client = createEtcdClient({ endpoint, tls: { ca, cert, key }, callTimeoutMs: 5_000 });
  await waitFor(`etcd ${line} on ${endpoint} (${dir}/etcd.log)`, () => status(client), 60_000);
  const tls = [
    `--endpoints=https://${endpoint}`,
    `--cacert=${pki.etcdCaCert}`,
    `--cert=${pki.etcdHealthcheckClientCert}`,
    `--key=${pki.etcdHealthcheckClientKey}`,
  ];
  return {
    dir,
    endpoint,
    process: proc,
    client,
    utl: join(bins, 'etcdutl'),
    ctl: (args, input) =>
      new Promise((resolve, reject) => {
        const child = execFile(join(bins, 'etcdctl'), [...tls, ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
          err ? reject(new Error(`etcdctl ${args[0]}: ${stderr || err.message}`)) : resolve(stdout),
        );
        child.stdin?.end(input ?? '');
      }),
    async stop() {
      client.close();
      await proc.stop();
    },
  };
}

/** Reads a stream to its end, counting bytes and hashing them; 'end' seen or the error. */
async function drain(stream: NodeJS.ReadableStream, options: { pauseAfterFirst?: (bytes: number) => Promise<void> } = {}) {
  let bytes = 0;
  let paused = false;
  const hash = createHash('sha256');
  let ended = false;
  stream.on('end', () => (ended = true));
  const error = await pipeline(
    stream,
    new Writable({
      highWaterMark: 0,
      write(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        hash.update(chunk);
        if (!paused && options.pauseAfterFirst) {
          paused = true;
          options.pauseAfterFirst(bytes).then(() => cb(), cb);
        } else cb();
      },
    }),
  ).then(
    () => undefined,
    (err: Error) => err,
  );
  return { bytes, sha256: hash.digest('hex'), ended, error };
}

/** Collects results until `until` says enough, then stops the watch (ending the iteration cancels the call). */
async function collect(iterable: AsyncIterable<WatchResult>, until: (all: WatchResult[]) => boolean): Promise<WatchResult[]> {
  const all: WatchResult[] = [];
  for await (const r of iterable) {
    all.push(r);
    if (until(all)) break;
  }
  return all;
}
/**
 * Bytes this process has read from files and sockets (/proc/self/io rchar): what a paused consumer let come off etcd's
 * connection, wherever it would sit. RSS cannot tell (the previous test's freed buffers are reused without growing it).
 */
async function bytesRead(): Promise<number> {
  return Number(/rchar: (\d+)/.exec(await readFile('/proc/self/io', 'utf8'))![1]);
}
const eventsOf = (results: WatchResult[]): WatchEvent[] => results.flatMap((r) => (r.type === 'events' ? r.events : []));

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'lifeboat-etcdgrpc-'));
  pki = await createControlPlanePki({
    root: join(root, 'kubernetes'),
    nodeName: 'n1',
    nodeIPs: ['127.0.0.1'],
    apiServerUrl: 'https://127.0.0.1:6443',
  });
});

describe('etcd gRPC client against a real etcd 3.6 with TLS, revisions past 2^53', () => {
  let etcd: Etcd;
  /** The compaction --mark-compacted set when the seed was restored with a revision bump. */
  let markedCompacted: Revision;

  beforeAll(async () => {
    // A seed etcd's snapshot restored with a revision bump that lands just below 2^53, so the test's writes cross it.
    const seed = await startEtcd('3.6', 'seed');
    await seed.ctl(['put', '/seed/a', 'one']);
    const seedRevision = revisionFromJson(await seed.ctl(['endpoint', 'status', '-w', 'json']))!;
    const seedFile = join(seed.dir, 'seed.db');
    await seed.ctl(['snapshot', 'save', seedFile]);
    await seed.stop();
    const bump = (BigInt(TWO_53) - 2n - BigInt(seedRevision)).toString();
    etcd = await startEtcd('3.6', 'main', { file: seedFile, bumpRevision: bump });
    markedCompacted = addRevisions(seedRevision, bump);
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('reads the status: the revision etcdctl reports, exact past 2^53, the version and the database size', async () => {
    await etcd.ctl(['put', '/status/x', 'y']);
    await etcd.ctl(['put', '/status/x', 'z']);
    await etcd.ctl(['put', '/status/x', 'w']);
    const [ours, theirs] = [await status(etcd.client), await etcd.ctl(['endpoint', 'status', '-w', 'json'])];
    expect(ours.revision).toBe(revisionFromJson(theirs));
    expect(compareRevisions(ours.revision, TWO_53)).toBe(1);
    expect(ours.version).toBe('3.6.16');
    expect(String(ours.dbSize)).toBe(revisionFromJson(theirs, 'dbSize'));
    expect(ours.errors).toEqual([]);
  });

  it('reads a key and counts a prefix at a revision', async () => {
    const before = (await status(etcd.client)).revision;
    await etcd.ctl(['put', '/range/a', 'v2']);
    await etcd.ctl(['put', '/range/b', 'v1']);
    expect((await getKey(etcd.client, '/status/x')).kv?.value.toString()).toBe('w');
    expect((await getKey(etcd.client, '/range/a', { revision: before })).kv).toBeUndefined();
    const now = await getKey(etcd.client, '/range/a');
    expect(now.kv).toMatchObject({ value: Buffer.from('v2'), version: '1', modRevision: addRevisions(before, 1) });
    expect(await countKeys(etcd.client, '/range/')).toEqual({ count: 2, revision: addRevisions(before, 2) });
    expect((await countKeys(etcd.client, '/range/', { revision: addRevisions(before, 1) })).count).toBe(1);
  });

  it('watches the whole keyspace from a revision: exactly the later puts and deletes, in order, revisions exact; progress on request', async () => {
    const from = (await status(etcd.client)).revision;
    await etcd.ctl(['put', '/w/a', 'A']);
    await etcd.ctl(['put', 'other/b', 'B']);
    await etcd.ctl(['del', '/w/a']);
    await etcd.ctl(['put', '/w/a', 'A2']);
    const watch = watchKeyspace(etcd.client, addRevisions(from, 1));
    const results = await collect(watch, (all) => {
      if (eventsOf(all).length === 4 && !all.some((r) => r.type === 'progress')) watch.requestProgress();
      return all.some((r) => r.type === 'progress');
    });
    expect(results[0]).toMatchObject({ type: 'created' });
    const events = eventsOf(results);
    expect(events.map((e) => [e.type, e.key.toString(), e.value.toString(), e.modRevision])).toEqual([
      ['PUT', '/w/a', 'A', addRevisions(from, 1)],
      ['PUT', 'other/b', 'B', addRevisions(from, 2)],
      ['DELETE', '/w/a', '', addRevisions(from, 3)],
      ['PUT', '/w/a', 'A2', addRevisions(from, 4)],
    ]);
    expect(events.every((e) => compareRevisions(e.modRevision, TWO_53) > 0)).toBe(true);
    expect(events[3]).toMatchObject({ createRevision: addRevisions(from, 4), version: '1', lease: '0' });
    expect(results.at(-1)).toEqual({ type: 'progress', revision: addRevisions(from, 4) });
  });

  it('ends a watch through its AbortSignal with an AbortError', async () => {
    const controller = new AbortController();
    const watch = watchKeyspace(etcd.client, addRevisions((await status(etcd.client)).revision, 1), { signal: controller.signal });
    const seen: WatchResult[] = [];
    const err = await collect(watch, (all) => {
      seen.push(all.at(-1)!);
      controller.abort();
      return false;
    }).catch((e: unknown) => e);
    expect(seen.map((r) => r.type)).toEqual(['created']);
    expect(err).toMatchObject({ name: 'AbortError' });
  });

  it('reports a compacted start revision with the compact revision, exact past 2^53', async () => {
    const below = addRevisions(markedCompacted, 0);
    const err = await collect(watchKeyspace(etcd.client, '2'), () => false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WatchCompactedError);
    expect(err).toMatchObject({ startRevision: '2', compactRevision: below });
    const at = (await status(etcd.client)).revision;
    await etcd.ctl(['put', '/compact/me', '1']);
    await etcd.ctl(['compaction', at]);
    const again = await collect(watchKeyspace(etcd.client, markedCompacted), () => false).catch((e: unknown) => e);
    expect(again).toMatchObject({ name: 'WatchCompactedError', compactRevision: at });
    expect((again as Error).message).toMatch(new RegExp(`compacted up to ${at}`));
  });

  describe('with ~55 MB of values (40 transactions of three keys)', () => {
    let loadedFrom: Revision;
    let dbSize: number;
    beforeAll(async () => {
      loadedFrom = addRevisions((await status(etcd.client)).revision, 1);
      // Values of different sizes, so a fragment boundary can fall inside a transaction's revision.
      const script = `for i in $(seq 1 40); do
        printf '\\nput /big/%s/a "%s"\\nput /big/%s/b "%s"\\nput /big/%s/c "%s"\\n\\n\\n' \\
          $i "$(head -c 300000 /dev/urandom | base64 -w0)" $i "$(head -c 340000 /dev/urandom | base64 -w0)" \\
          $i "$(head -c 380000 /dev/urandom | base64 -w0)" | "$0" "\${@}" txn >/dev/null || exit 1
      done`;
      const bins = (await serverBinaries()).etcd['3.6'];
      await run('bash', [
        '-c',
        script,
        join(bins, 'etcdctl'),
        `--endpoints=https://${etcd.endpoint}`,
        `--cacert=${pki.etcdCaCert}`,
        `--cert=${pki.etcdHealthcheckClientCert}`,
        `--key=${pki.etcdHealthcheckClientKey}`,
      ]);
      dbSize = (await status(etcd.client)).dbSize;
      expect(dbSize).toBeGreaterThan(50e6);
    });

    it("streams a snapshot the size of etcdctl's file of the same revision, and etcdutl restores it with the hash check", async () => {
      const before = await status(etcd.client);
      const file = join(etcd.dir, 'grpc.db');
      const download = snapshotStream(etcd.client);
      await pipeline(download.stream, createWriteStream(file));
      const summary = await download.summary;
      const theirs = join(etcd.dir, 'etcdctl.db');
      await etcd.ctl(['snapshot', 'save', theirs]);
      expect((await status(etcd.client)).revision).toBe(before.revision);

      expect(summary).toMatchObject({ bytes: summary.dbBytes + 32, hashMatched: true, version: '3.6.0' });
      expect(summary.dbBytes).toBeGreaterThan(50e6);
      expect((await stat(file)).size).toBe(summary.bytes);
      expect((await stat(theirs)).size).toBe(summary.bytes);
      const fileHash = createHash('sha256');
      await pipeline(createReadStream(file, { end: summary.dbBytes - 1 }), fileHash);
      expect(fileHash.digest('hex')).toBe(summary.sha256);
      const wholeFile = createHash('sha256');
      await pipeline(createReadStream(file), wholeFile);
      expect(wholeFile.digest('hex')).toBe(summary.fileSha256);

      // Not byte-identical (bolt's meta pages differ), but the same content: etcdutl's hash of the keyspace.
      const [ourStatus, theirStatus] = await Promise.all([file, theirs].map((f) => run(etcd.utl, ['snapshot', 'status', '-w', 'json', f])));
      expect(ourStatus.stdout).toBe(theirStatus.stdout);
      expect(revisionFromJson(ourStatus.stdout)).toBe(before.revision);
      await run(etcd.utl, ['snapshot', 'restore', file, '--data-dir', join(etcd.dir, 'restored')]);
    });

    it('reads no faster than a paused consumer, and an AbortSignal ends the transfer with an error, never an end', async () => {
      const readBefore = await bytesRead();
      const controller = new AbortController();
      const download = snapshotStream(etcd.client, controller.signal);
      let readWhilePaused = 0;
      const result = await drain(download.stream, {
        pauseAfterFirst: async () => {
          await new Promise((r) => setTimeout(r, 2_000));
          readWhilePaused = (await bytesRead()) - readBefore;
          controller.abort();
        },
      });
      // The 8 MiB HTTP/2 window plus a few 32 KiB messages in grpc-js' and the streams' buffers, of a 60 MB database.
      expect(readWhilePaused).toBeLessThan(12 << 20);
      expect(result.ended).toBe(false);
      expect(result.error?.name).toBe('AbortError');
      await expect(download.summary).rejects.toThrow();
      expect((await getKey(etcd.client, '/big/40/c')).kv?.value.length).toBe(506668);
    });

    it('catches a watch up over the big revisions in order, each result whole revisions, reading no faster than the consumer', async () => {
      const readBefore = await bytesRead();
      let readWhilePaused = 0;
      const watch = watchKeyspace(etcd.client, loadedFrom, { progressNotify: false });
      const results: WatchResult[] = [];
      for await (const r of watch) {
        if (results.length === 1) {
          await new Promise((resolve) => setTimeout(resolve, 2_000));
          readWhilePaused = (await bytesRead()) - readBefore;
        }
        results.push(r);
        if (eventsOf(results).length === 120) break;
      }
      expect(readWhilePaused).toBeLessThan(16 << 20);
      const events = eventsOf(results);
      expect(events.map((e) => e.key.toString())).toEqual(
        Array.from({ length: 40 }, (_, i) => ['a', 'b', 'c'].map((k) => `/big/${i + 1}/${k}`)).flat(),
      );
      expect(events.map((e) => e.modRevision)).toEqual(Array.from({ length: 120 }, (_, i) => addRevisions(loadedFrom, Math.floor(i / 3))));
      for (const r of results) {
        if (r.type !== 'events') continue;
        const revisions = r.events.map((e) => e.modRevision);
        // Three events per revision, none split across results.
        expect(revisions.filter((v) => v === revisions[0]).length).toBe(3);
        expect(revisions.filter((v) => v === revisions.at(-1)).length).toBe(3);
      }
      // Catching up batches many revisions, fragmented by etcd (its 1.5 MiB request limit + 512 KiB): several results.
      expect(results.filter((r) => r.type === 'events').length).toBeGreaterThan(3);
    });

    it('fails the snapshot stream, never ending it, when etcd dies midway', async () => {
      const download = snapshotStream(etcd.client);
      const result = await drain(download.stream, {
        pauseAfterFirst: async () => {
          etcd.process.child.kill('SIGKILL');
          await etcd.process.exited;
        },
      });
      expect(result.ended).toBe(false);
      expect(result.error?.message).toMatch(
        /etcd snapshot from 127\.0\.0\.1:\d+( broke after \d+ bytes|: the stream ended after \d+ of \d+ bytes)/,
      );
      expect(result.bytes).toBeLessThan(dbSize);
      await expect(download.summary).rejects.toThrow();
    });
  });
});

describe('etcd 3.5 snapshots', () => {
  it('streams and verifies a 3.5 snapshot, which has no version field; etcdutl 3.5 restores it', async () => {
    const etcd = await startEtcd('3.5', 'old');
    try {
      await etcd.ctl(['put', '/k', 'v']);
      const download = snapshotStream(etcd.client);
      const file = join(etcd.dir, 'old.db');
      await pipeline(download.stream, createWriteStream(file));
      const summary = await download.summary;
      expect(summary).toMatchObject({ version: '', hashMatched: true });
      expect((await stat(file)).size).toBe(summary.bytes);
      await run(etcd.utl, ['snapshot', 'restore', file, '--data-dir', join(etcd.dir, 'restored')]);
    } finally {
      await etcd.stop();
    }
  });
});
