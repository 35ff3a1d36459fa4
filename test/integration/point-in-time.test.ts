import { CopyObjectCommand, CreateBucketCommand } from '@aws-sdk/client-s3';
import type { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { readFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { buildPoint, planPointInTime } from '../../activities/continuous/point';
import type { ActivityDeps } from '../../activities/deps';
import { trustRulesFor } from '../../src/backup/trusted-catalog';
import { findCluster } from '../../src/config/load';
import { formatHealthReport } from '../../src/cli/health';
import { checkClusterHealth } from '../../src/health/check';
import { captureSegments, EtcdReplacedError, readChainTip, type Durable } from '../../src/continuous/capture';
import { planPoint, PointUnavailable } from '../../src/continuous/point';
import { chainIdOf } from '../../src/continuous/segment';
import { listSegmentKeys } from '../../src/continuous/segment-store';
import { createEtcdClient, unaryCall, type EtcdClient } from '../../src/etcd/grpc/client';
import type { LeaseGrantResponse, TxnResponse } from '../../src/etcd/grpc/proto';
import { status } from '../../src/etcd/grpc/status';
import { compareRevisions } from '../../src/etcd/revision';
import { recoveryInputProblems } from '../../workflows/recovery-input';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { minioClient, minioStorage } from '../support/bed';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { drill, drillReportOf } from '../support/drills';
import { keyspaceAt, restoreStoredSnapshot } from '../support/pitr';
import { startTestWorker, type RunningWorker } from '../support/worker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const BUCKET = 'pitr';

/**
 * Restore to a point: a real etcd 3.6 (a sandbox node, TLS), a full backup as the chain's base, its changes captured
 * into segments in MinIO, then points rebuilt off the control plane (the base restored into a throwaway etcd on the
 * worker, the segments replayed) and compared key by key (value, create/mod revision, version, lease) with the live
 * etcd's own view at that revision.
 */
describe('restore to a point: base + segments, replayed exactly', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let key: { path: string; key: Buffer };
  let etcd: EtcdClient;
  let deps: ActivityDeps;
  let etcdBin: string;
  const s3 = minioClient();
  const capture = new AbortController();
  let captured: Promise<void>;
  let durable: Durable | undefined;
  let base: { manifestKey: string; revision: string; created: string };
  /** After phase A (creates), before phase B (updates, deletes, a lease, a transaction). */
  let r1: string;
  let t1: string;
  let r2: string;
  const put = (k: string, v: string, lease?: string) =>
    unaryCall<TxnResponse>(etcd, 'Txn', (md, o, cb) =>
      etcd.kv.Txn({ success: [{ requestPut: { key: Buffer.from(k), value: Buffer.from(v), ...(lease ? { lease } : {}) } }] }, md, o, cb),
    );
  const del = (k: string) =>
    unaryCall<TxnResponse>(etcd, 'Txn', (md, o, cb) =>
      etcd.kv.Txn({ success: [{ requestDeleteRange: { key: Buffer.from(k) } }] }, md, o, cb),
    );
  const cm = (name: string) => `/registry/configmaps/default/${name}`;

  /** The capture as the capture run drives it, on this sandbox's etcd and bucket. */
  const captureOptions = () => {
    const cfg = findCluster(worker.config, 'pitr');
    return {
      s3,
      storage: cfg.storage,
      cluster: 'pitr',
      codec: { compression: 'zstd' as const, key: key.key, keyId: 'k1' },
      client: etcd,
      segmentSeconds: 1,
      maxSegmentBytes: 64 * 1024,
      signal: AbortSignal.timeout(15_000),
      onDurable: () => undefined,
    };
  };

  beforeAll(async () => {
    key = await keyFile();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: 'pitr', etcdLine: '3.6', withApiserver: false, storage: minioStorage(BUCKET) });
    etcdBin = cluster.binaries.etcd['3.6'];
    const pki = (f: string) => readFile(cluster.controlPlane.path(`/etc/kubernetes/pki/etcd/${f}`));
    etcd = createEtcdClient({
      endpoint: `${cluster.controlPlane.ip}:2379`,
      tls: { ca: await pki('ca.crt'), cert: await pki('healthcheck-client.crt'), key: await pki('healthcheck-client.key') },
    });
    const config = withBackup(cluster, { encryptionKey: 'k1', compression: 'zstd', continuous: { segmentSeconds: 1 } });
    worker = await startTestWorker([config], {
      encryptionKeys: { k1: { file: key.path } },
      drill: { scratchDir: await mkdtemp(join(tmpdir(), 'lifeboat-pitr-scratch-')), etcd: { '3.6': etcdBin }, startTimeout: '60s' },
    });
    deps = { config: worker.config, logger: pino({ level: 'silent' }) };
    for (let i = 0; i < 5; i++) await put(cm(`base-${i}`), `base ${i}`);
    const backup = await runBackup(worker.client, worker.taskQueue, 'pitr');
    base = { manifestKey: backup.manifestKey, revision: backup.revision, created: backup.created };

    // The capture, as the capture run drives it: from the chain's tip in the bucket.
    const cfg = findCluster(worker.config, 'pitr');
    const rules = trustRulesFor(worker.config, cfg);
    const chain = chainIdOf(base.manifestKey);
    const tip = await readChainTip(
      s3,
      cfg.storage,
      'pitr',
      chain,
      { manifestKey: base.manifestKey, revision: base.revision },
      rules.loadKey,
    );
    captured = captureSegments({ ...captureOptions(), tip, signal: capture.signal, onDurable: (d) => (durable = d) });

    // Phase A: creates.
    for (let i = 0; i < 3; i++) await put(cm(`a${i}`), `first ${i}`);
    r1 = (await status(etcd)).revision;
    await sleep(1500);
    t1 = new Date().toISOString();
    await sleep(1500);
    // Phase B: an update, a delete, a key under a lease (an Event), a transaction of two keys at one revision, creates.
    await put(cm('a0'), 'second 0');
    await del(cm('a1'));
    const lease = await unaryCall<LeaseGrantResponse>(etcd, 'LeaseGrant', (md, o, cb) => etcd.lease.LeaseGrant({ TTL: '600' }, md, o, cb));
    await put('/registry/events/default/e1', 'an event', lease.ID);
    await unaryCall<TxnResponse>(etcd, 'Txn', (md, o, cb) =>
      etcd.kv.Txn(
        {
          success: [
            { requestPut: { key: Buffer.from(cm('t1')), value: Buffer.from('txn') } },
            { requestPut: { key: Buffer.from(cm('t2')), value: Buffer.from('txn') } },
          ],
        },
        md,
        o,
        cb,
      ),
    );
    for (let i = 0; i < 3; i++) await put(cm(`b${i}`), `later ${i}`);
    r2 = (await status(etcd)).revision;
    const deadline = Date.now() + 30_000;
    while (!durable || compareRevisions(durable.knownThrough, r2) < 0) {
      if (Date.now() > deadline) throw new Error(`capture not durable through ${r2}: ${JSON.stringify(durable)}`);
      await sleep(200);
    }
  }, 240_000);

  afterAll(async () => {
    capture.abort();
    await captured?.catch(() => undefined);
    etcd?.close();
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  async function rebuiltEqualsLive(at: string, expectRevision: string) {
    const plan = await planPointInTime(deps)({ cluster: 'pitr', at });
    expect(plan).toMatchObject({ revision: expectRevision, base: { manifestKey: base.manifestKey } });
    const built = await buildPoint(deps)({
      cluster: 'pitr',
      plan,
      runKey: `pitr-${Date.now()}`,
      workflow: { workflowId: 'w', runId: 'r' },
    });
    expect(built).toMatchObject({ revision: expectRevision, built: true });
    const restored = await restoreStoredSnapshot(s3, BUCKET, built.manifestKey, key.key, etcdBin);
    try {
      expect(restored.revision).toBe(expectRevision);
      // Exact: the rebuilt etcd holds what the live etcd held at that revision, key by key, revisions and versions too.
      expect(await keyspaceAt(restored.client)).toEqual(await keyspaceAt(etcd, expectRevision));
      expect((await status(restored.client)).revision).toBe(expectRevision);
    } finally {
      await restored.stop();
    }
    return { plan, built };
  }

  it('to a revision in the middle: created before are back, later changes are not (the update undone, the deleted key back)', async () => {
    const { plan } = await rebuiltEqualsLive(r1, r1);
    expect(plan.segments).toBeGreaterThanOrEqual(1);
    expect(plan.notRestored).toContain(`revisions after ${r1}`);
  }, 120_000);

  it('to a moment: lands on the last revision seen by then', async () => {
    const plan = await planPoint(s3, trustRulesFor(worker.config, findCluster(worker.config, 'pitr')), t1, { now: new Date() });
    expect(plan.revision).toBe(r1);
    expect(Date.parse(plan.time)).toBeLessThanOrEqual(Date.parse(t1));
  });

  it('to the newest durable point: the transaction lands as one revision and the leased key keeps a lease', async () => {
    const live = await keyspaceAt(etcd, r2);
    const { built } = await rebuiltEqualsLive('newest', r2);
    expect(built.replay?.leased).toMatchObject({ keys: 1, leases: 1 });
    const txn = live.filter((k) => k.key.endsWith('/t1') || k.key.endsWith('/t2'));
    expect(new Set(txn.map((k) => k.modRevision)).size).toBe(1);
    expect(live.find((k) => k.key.endsWith('/e1'))?.lease).not.toBe('0');
  }, 120_000);

  it('refuses points it cannot prove, with the range there is; nonsense is refused at the input', async () => {
    const rules = trustRulesFor(worker.config, findCluster(worker.config, 'pitr'));
    const now = new Date();
    const refusal = (at: string) =>
      planPoint(s3, rules, at, { now }).then(
        () => 'planned',
        (err: Error) => err,
      );
    const before = await refusal(new Date(Date.parse(base.created) - 3_600_000).toISOString());
    expect(before).toBeInstanceOf(PointUnavailable);
    expect((before as Error).message).toMatch(/before the oldest base.*the chains hold revision/);
    const after = await refusal(String(BigInt(r2) + 1000n));
    expect((after as Error).message).toMatch(new RegExp(`after the newest durable point.*to revision ${r2}`));
    expect(((await refusal(new Date(now.getTime() + 3_600_000).toISOString())) as Error).message).toMatch(/in the future/);
    expect(recoveryInputProblems({ cluster: 'pitr', at: 'yesterday' })).toEqual([expect.stringMatching(/^at: .*neither "newest"/)]);
    expect(recoveryInputProblems({ cluster: 'pitr', at: '5', snapshot: 'latest' })).toEqual([expect.stringMatching(/^at: restore either/)]);
  });

  it('a drill also rebuilds the newest chain and checks it against the counts its segments sign', async () => {
    // This sandbox runs etcd only: the archive has no kube-apiserver manifest, which the drill reports; nothing else.
    const ran = await drill(worker.client, worker.taskQueue, { cluster: 'pitr' }).then(
      (r) => ({ manifestKey: r.manifestKey }),
      (err: WorkflowFailedError) => (err.cause as ApplicationFailure).details?.[0] as { manifestKey: string },
    );
    const report = await drillReportOf(s3, worker, ran.manifestKey);
    expect(report?.problems.filter((p) => !/archive lacks the manifests: manifests\/kube-apiserver.yaml/.test(p))).toEqual([]);
    expect(report?.checks).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^chain ${chainIdOf(base.manifestKey)}: base .* segments replayed on the worker, \\d+ events as the segments count them, exactly at revision ${r2}`,
        ),
      ),
    );
  }, 120_000);

  it('lifeboat health reports the lag: caught up while the capture runs, behind (a problem past 2 min) once it stopped', async () => {
    const cfg = findCluster(worker.config, 'pitr');
    const loadKey = trustRulesFor(worker.config, cfg).loadKey;
    const caughtUp = await checkClusterHealth(cfg, { loadKey });
    expect(caughtUp.continuous).toMatchObject({ chain: chainIdOf(base.manifestKey), durableThrough: r2, lagSeconds: 0 });
    expect(caughtUp.problems.filter((p) => p.startsWith('continuous'))).toEqual([]);
    expect(formatHealthReport(caughtUp)).toContain(`continuous:   caught up: durable through revision ${r2}`);

    capture.abort();
    await captured;
    await put(cm('unshipped'), 'x');
    // Three minutes later, as the check would see it: the bucket's newest change is that old and etcd has a newer one.
    const later = new Date(Date.now() + 180_000);
    const behind = await checkClusterHealth(cfg, { loadKey, now: () => later });
    expect(behind.continuous?.lagSeconds).toBeGreaterThan(170);
    expect(behind.problems).toContainEqual(
      expect.stringMatching(
        new RegExp(`^continuous backups: \\d+ s behind: etcd is at revision \\d+, the bucket holds changes through ${r2}`),
      ),
    );
    expect(formatHealthReport(behind, later)).toMatch(/continuous: {3}\d+ min behind: durable through revision/);
  }, 120_000);

  it('a segment moved in the bucket breaks the chain there: refused naming it, or the newest point before it when asked', async () => {
    capture.abort();
    await captured;
    const cfg = findCluster(worker.config, 'pitr');
    const keys = await listSegmentKeys(s3, cfg.storage, 'pitr', chainIdOf(base.manifestKey));
    expect(keys.length).toBeGreaterThanOrEqual(2);
    // The last segment's genuine bytes copied over the one before it: authentic content in the wrong place.
    const victim = keys[keys.length - 2];
    await s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: victim, CopySource: `${BUCKET}/${keys[keys.length - 1]}` }));
    const rules = trustRulesFor(worker.config, cfg);
    const refused = await planPoint(s3, rules, 'newest', { now: new Date() }).catch((err: Error) => err);
    expect(refused).toBeInstanceOf(PointUnavailable);
    expect((refused as Error).message).toContain(`breaks at ${victim}`);
    const stopped = await planPoint(s3, rules, 'newest', { now: new Date(), stopAtBreak: true });
    expect(stopped.brokenAt?.key).toBe(victim);
    expect(compareRevisions(stopped.revision, r2)).toBeLessThan(0);
  });

  it('a wiped etcd (its own history from revision 1) never continues the chain: refused while behind it, and once past it', async () => {
    const cfg = findCluster(worker.config, 'pitr');
    const rules = trustRulesFor(worker.config, cfg);
    const chain = chainIdOf(base.manifestKey);
    const tip = await readChainTip(
      s3,
      cfg.storage,
      'pitr',
      chain,
      { manifestKey: base.manifestKey, revision: base.revision },
      rules.loadKey,
    );
    const before = await status(etcd);
    const lastKey = Buffer.from(tip.lastEvent!.key, 'base64').toString('latin1');
    const pids = (await cluster.controlPlane.pods()).flatMap((p) => p.containers.map((c) => c.pid)).filter(Boolean);
    await cluster.controlPlane.exec(['bash', '-c', `rm -rf /var/lib/etcd/member; kill -9 ${pids.join(' ')} 2>/dev/null || true`]);
    let after = before;
    for (let i = 0; i < 120 && compareRevisions(after.revision, before.revision) >= 0; i++) {
      await sleep(500);
      after = await status(etcd).catch(() => before);
    }
    // Behind the chain: refused at once.
    const behind = await captureSegments({ ...captureOptions(), tip }).then(
      () => 'ran',
      (err: Error) => err,
    );
    expect(behind).toBeInstanceOf(EtcdReplacedError);
    expect((behind as Error).message).toMatch(/behind the chain's/);
    // Then past the chain's revision with its own history (the chain's last key written too, at another revision):
    // without the check its next revisions would be taken as the chain's.
    await put(lastKey, 'another history');
    for (let i = 0; compareRevisions((await status(etcd)).revision, tip.lastRevision) <= 0 && i < 400; i++) await put(cm(`new-${i}`), 'x');
    const refused = await captureSegments({ ...captureOptions(), tip }).then(
      () => 'ran',
      (err: Error) => err,
    );
    expect(refused).toBeInstanceOf(EtcdReplacedError);
    expect((refused as Error).message).toMatch(/does not hold the chain's last change/);
    expect((await listSegmentKeys(s3, cfg.storage, 'pitr', chain)).at(-1)).toBe(tip.key);
  }, 120_000);
});
