import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Worker } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { parseConfig } from '../../src/config/load';
import type { ClusterConfig, Config } from '../../src/config/schema';
import { freePort, waitFor } from '../../src/devserver/processes';
import { payloadConverterPath } from '../../src/temporal/data-converter';
import { workflowsPath } from '../../src/temporal/worker';
import { chainIdOf } from '../../src/continuous/segment';
import { listChainIds, listSegmentKeys } from '../../src/continuous/segment-store';
import { withEtcdClient } from '../../src/etcd/cluster-client';
import { status } from '../../src/etcd/grpc';
import { compareRevisions, type Revision } from '../../src/etcd/revision';
import { syncBackupSchedules } from '../../src/schedules/backup-schedules';
import { captureWorkflowId } from '../../workflows/run-ids';
import { captureStateQuery, type CaptureState } from '../../workflows/capture-changes';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { etcdctlArgs } from '../../sandbox/control-plane';
import { minioClient, minioStorage, testBed } from '../support/bed';
import { keyFile, withBackup } from '../support/backups';
import { chainThrough as chainThroughOf, readChain as readChainOf } from '../support/chains';
import { KillableWorker } from '../support/kill';
import { workerProcess } from '../support/worker-process';

/**
 * Continuous backups' capture against real servers: a sandbox control plane (etcd 3.6 reached over SSH through a port
 * forward), MinIO, Temporal and the worker as users run it (its own process, so it can be SIGKILLed). Segments are
 * read back the way a restore reads them: believed one by one (readSegment) and checked as a chain (checkChain).
 */
const CLUSTER = 'capture';
const BUCKET = 'capture';

describe('continuous capture (etcd watch -> segments in the bucket)', () => {
  let cluster: SandboxCluster;
  let key: { path: string; key: Buffer };
  let config: ClusterConfig;
  let worker: KillableWorker;
  let taskQueue: string;
  let connection: Connection;
  let client: Client;
  let metricsAddress: string;
  const s3 = minioClient();
  const capture = () => client.workflow.getHandle(captureWorkflowId(CLUSTER));
  const engineConfig = (c: ClusterConfig): Config =>
    parseConfig({ temporal: { taskQueue }, encryptionKeys: { k1: { file: key.path } }, clusters: [c] }, 'test config');

  /** etcdctl on the control-plane node; `etcdctl(...)` prints etcd's answer. */
  const etcdctl = (...args: string[]) => cluster.controlPlane.exec(['etcdctl', ...etcdctlArgs(), ...args]);
  const sh = (script: string) => cluster.controlPlane.exec(['bash', '-c', script]);
  const etcdctlLine = `etcdctl ${etcdctlArgs().join(' ')}`;
  const currentRevision = async (): Promise<Revision> => /"revision":(\d+)/.exec(await etcdctl('get', 'x', '-w', 'json'))![1];
  const modRevisionOf = async (k: string): Promise<Revision> => /"mod_revision":(\d+)/.exec(await etcdctl('get', k, '-w', 'json'))![1];

  const place = (chain: string) => ({ s3, storage: config.storage, cluster: CLUSTER, chain, key: key.key });
  const readChain = (chain: string) => readChainOf(place(chain));
  const chainThrough = (chain: string, revision: Revision) => chainThroughOf(place(chain), revision);

  const state = () => capture().query(captureStateQuery);
  const scrape = async () => (await fetch(`http://${metricsAddress}/metrics`)).text();

  /** `lifeboat schedule sync` with this config; the schedules it makes besides the capture are not under test here. */
  async function sync(c: ClusterConfig) {
    const r = await syncBackupSchedules(client, engineConfig(c), { env: { LIFEBOAT_TASK_QUEUE: taskQueue } });
    for (const id of [...r.created, ...r.updated]) await client.schedule.getHandle(id).delete();
    return r.captures;
  }

  beforeAll(async () => {
    key = await keyFile();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: CLUSTER, etcdLine: '3.6', withApiserver: false, storage: minioStorage(BUCKET) });
    config = withBackup(cluster, { encryptionKey: 'k1', compression: 'zstd', continuous: { segmentSeconds: 1 } });
    metricsAddress = `127.0.0.1:${await freePort()}`;
    const w = await workerProcess(CLUSTER, config, key.path);
    taskQueue = w.taskQueue;
    // Read by every launch of the worker process (the one started again after the SIGKILL too).
    process.env.LIFEBOAT_METRICS_ADDRESS = metricsAddress;
    worker = new KillableWorker(w.launch);
    connection = await Connection.connect({ address: testBed().temporalAddress });
    client = new Client({ connection });
    for (let i = 0; i < 5; i++) await etcdctl('put', `/registry/configmaps/default/before-${i}`, `v${i}`);
  }, 300_000);
  afterAll(async () => {
    await capture()
      ?.terminate('test over')
      .catch(() => undefined);
    await worker?.stop();
    delete process.env.LIFEBOAT_METRICS_ADDRESS;
    await connection?.close();
    await cluster?.destroy();
    s3.destroy();
  });

  let firstChain: string;
  it('schedule sync starts capture-<cluster>; with no full backup yet it takes one; every write lands in a segment, at its exact revision', async () => {
    expect(await sync(config)).toEqual({ started: [captureWorkflowId(CLUSTER)], running: [], stopped: [] });
    expect((await sync(config)).running).toEqual([captureWorkflowId(CLUSTER)]);
    // The run says why it took a backup first; that backup is the chain's base.
    const started = await waitFor(
      'the first full backup',
      async () => {
        const s = await state();
        return s.lastBreak?.backup ? s.lastBreak : undefined;
      },
      180_000,
      1000,
    );
    expect(started).toMatchObject({ reason: 'no-base', backup: expect.stringMatching(/\.manifest\.json$/) });
    firstChain = chainIdOf(started.backup!);
    for (let i = 0; i < 10; i++) await etcdctl('put', `/registry/configmaps/default/cm-${i}`, `value-${i}`);
    await etcdctl('del', '/registry/configmaps/default/before-0');
    await etcdctl('put', '/registry/configmaps/default/cm-0', 'value-0-updated');
    const through = await currentRevision();
    const chain = await chainThrough(firstChain, through);
    expect(await listChainIds(s3, config.storage, CLUSTER)).toEqual([firstChain]);
    const puts = new Map(chain.events.filter((e) => e.type === 'put').map((e) => [Buffer.from(e.key, 'base64').toString(), e]));
    for (let i = 1; i < 10; i++) {
      const k = `/registry/configmaps/default/cm-${i}`;
      expect([k, Buffer.from(puts.get(k)!.value!, 'base64').toString(), puts.get(k)!.modRevision]).toEqual([
        k,
        `value-${i}`,
        await modRevisionOf(k),
      ]);
    }
    expect(Buffer.from(puts.get('/registry/configmaps/default/cm-0')!.value!, 'base64').toString()).toBe('value-0-updated');
    expect(chain.events.filter((e) => e.type === 'delete').map((e) => Buffer.from(e.key, 'base64').toString())).toEqual([
      '/registry/configmaps/default/before-0',
    ]);
    // Nothing before the base, nothing missing after it: the chain starts at base + 1 and every revision is there.
    expect(chain.entries[0].segment.firstRevision).toBe((BigInt(chain.base.revision) + 1n).toString());
    expect(chain.check.problem).toBeUndefined();

    // The recovery point on a quiet cluster stays a few seconds: etcd's watch progress moves it on without segments.
    await new Promise((r) => setTimeout(r, 6000));
    const lag = Number(/lifeboat_continuous_lag_seconds\{cluster="capture"\} ([\d.]+)/.exec(await scrape())?.[1]);
    expect(lag).toBeLessThan(5);
  }, 400_000);

  it('a worker SIGKILLed while writes stream in resumes from the bucket: no revision missing, none twice', async () => {
    const segments = async () => (await listSegmentKeys(s3, config.storage, CLUSTER, firstChain)).length;
    const before = await segments();
    // 150 writes over ~10 s on the node while the worker is killed and started again.
    const writes = sh(`for i in $(seq 1 150); do ${etcdctlLine} put /registry/secrets/default/s-$i v$i >/dev/null; done`);
    // Killed once a segment of these writes is durable: the next one is half read, not yet written.
    await worker.killDuring(capture(), 'captureChanges', async () => (await segments()) > before + 1);
    await writes;
    const through = await currentRevision();
    const chain = await chainThrough(firstChain, through);
    const secrets = chain.events.filter((e) => Buffer.from(e.key, 'base64').toString().startsWith('/registry/secrets/'));
    // Each write exactly once, in order, at the revision etcd gave it.
    expect(secrets.map((e) => Buffer.from(e.key, 'base64').toString())).toEqual(
      Array.from({ length: 150 }, (_, i) => `/registry/secrets/default/s-${i + 1}`),
    );
    expect(secrets.at(-1)!.modRevision).toBe(await modRevisionOf('/registry/secrets/default/s-150'));
    expect(chain.check).toMatchObject({ segments: chain.entries.length, provenThrough: expect.any(String) });
    expect(chain.check.problem).toBeUndefined();
  }, 400_000);

  it('down past a compaction: the capture says the chain broke, takes a full backup and starts a new chain', async () => {
    // Continuous backups turned off: sync stops the capture.
    const { continuous: _off, ...backupOff } = config.backup;
    expect((await sync({ ...config, backup: backupOff })).stopped).toEqual([captureWorkflowId(CLUSTER)]);
    await waitFor('the capture to stop', async () => (await capture().describe()).status.name !== 'RUNNING', 60_000, 500);
    const tip = (await readChain(firstChain)).check.provenThrough;

    // Changes the capture never saw, then compacted away (kube-apiserver compacts every 5 minutes).
    for (let i = 0; i < 5; i++) await etcdctl('put', `/registry/configmaps/default/unseen-${i}`, 'x');
    const compactedTo = await currentRevision();
    await etcdctl('compact', compactedTo);

    expect((await sync(config)).started).toEqual([captureWorkflowId(CLUSTER)]);
    const broken = await waitFor(
      'the break to be reported with its backup',
      async () => {
        const s: CaptureState = await state().catch(() => undefined as never);
        return s?.lastBreak?.reason === 'compacted' && s.lastBreak.backup ? s.lastBreak : undefined;
      },
      180_000,
      1000,
    );
    expect(broken).toMatchObject({ chain: firstChain, message: expect.stringMatching(/compacted/) });
    const newChain = chainIdOf(broken.backup!);
    expect(newChain).not.toBe(firstChain);
    // The new chain's base holds what was compacted: its revision is past the compaction.
    expect(compareRevisions(newChain.replace(/.*-rev/, ''), compactedTo)).toBeGreaterThanOrEqual(0);

    await etcdctl('put', '/registry/configmaps/default/after-break', 'y');
    const chain = await chainThrough(newChain, await currentRevision());
    expect(chain.events.map((e) => Buffer.from(e.key, 'base64').toString())).toContain('/registry/configmaps/default/after-break');
    expect(await listChainIds(s3, config.storage, CLUSTER)).toEqual([firstChain, newChain]);
    // The old chain was not extended past its tip across the gap.
    expect((await readChain(firstChain)).check.provenThrough).toBe(tip);
    expect(await scrape()).toMatch(/lifeboat_continuous_chain_breaks_total\{cluster="capture"\} 1\b/);

    // The runs so far (the first chain's start, the run cancelled by sync, the break) replay against the workflow
    // code; LIFEBOAT_RECORD_HISTORIES=<dir> keeps them (the temporal CLI's JSON) for test/unit/replay.test.ts.
    const closed: { runId: string; status: string }[] = [];
    for await (const w of client.workflow.list({ query: `WorkflowId = '${captureWorkflowId(CLUSTER)}'` }))
      if (w.status.name !== 'RUNNING') closed.push({ runId: w.runId, status: w.status.name });
    expect(closed.map((c) => c.status).sort()).toEqual(['CANCELLED', 'CONTINUED_AS_NEW', 'CONTINUED_AS_NEW']);
    const histories = await Promise.all(
      closed.map(async (c) => ({
        workflowId: captureWorkflowId(CLUSTER),
        history: await client.workflow.getHandle(captureWorkflowId(CLUSTER), c.runId).fetchHistory(),
      })),
    );
    const out = process.env.LIFEBOAT_RECORD_HISTORIES;
    if (out) {
      for (const [i, c] of closed.entries()) {
        const { stdout } = await promisify(execFile)(
          cluster.binaries.temporal,
          ['workflow', 'show', '-w', captureWorkflowId(CLUSTER), '-r', c.runId, '--output', 'json', '--address', testBed().temporalAddress],
          { maxBuffer: 64 << 20 },
        );
        await writeFile(join(out, `${captureWorkflowId(CLUSTER)}.${i}.json`), stdout);
      }
    }
    const errors: string[] = [];
    for await (const r of Worker.runReplayHistories({ workflowsPath, dataConverter: { payloadConverterPath } }, histories))
      if (r.error) errors.push(`${r.workflowId} (${closed.map((c) => c.status).join(', ')}): ${String(r.error)}`);
    expect(errors).toEqual([]);
  }, 400_000);

  it('reaches etcd directly (etcd.direct) as well, and names a client key it cannot read without showing any', async () => {
    const pki = cluster.controlPlane.path('/etc/kubernetes/pki/etcd');
    const direct = {
      ...config,
      etcd: {
        ...config.etcd,
        direct: {
          endpoints: ['https://127.0.0.1:1', `https://${cluster.controlPlane.ip}:2379`],
          caFile: `${pki}/ca.crt`,
          certFile: `${pki}/healthcheck-client.crt`,
          keyFile: `${pki}/healthcheck-client.key`,
          etcdctl: 'etcdctl',
          etcdutl: 'etcdutl',
          workDir: '/tmp',
        },
      },
    } as ClusterConfig;
    // The first endpoint is dead: the next that answers is used.
    const viaDirect = await withEtcdClient(engineConfig(direct), CLUSTER, async (c) => (await status(c)).revision);
    expect(compareRevisions(viaDirect, '1')).toBeGreaterThan(0);
    const missing = { ...config, etcd: { ...config.etcd, keyFile: '/etc/kubernetes/pki/etcd/nope.key' } };
    await expect(withEtcdClient(engineConfig(missing), CLUSTER, async () => 'unreachable')).rejects.toThrow(
      /^etcd\.keyFile: cannot read \/etc\/kubernetes\/pki\/etcd\/nope\.key on node "cp1" \(.*No such file/,
    );
  }, 120_000);
});
