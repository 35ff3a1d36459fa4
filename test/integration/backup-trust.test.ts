import { CopyObjectCommand, CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import pino from 'pino';
import { applyRetention } from '../../activities/backup/retention';
import { newestAuthenticBackup } from '../../activities/backup/revision-check';
import { listObjects, readManifest } from '../../src/backup/catalog';
import { writeManifest } from '../../activities/backup/finish';
import { trustRulesFor } from '../../src/backup/trusted-catalog';
import { loadEncryptionKey } from '../../src/backup/keyring';
import { drillReportKeyOf, readDrillReport, writeDrillReport, type DrillReport } from '../../src/drill/report';
import { newestBackup } from '../../src/health/newest-backup';
import { REVISION_BUMP } from '../../src/recovery/plan';
import type { ClusterConfig } from '../../src/config/schema';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { etcdctlArgs } from '../../sandbox/control-plane';
import { importBackup } from '../../workflows';
import type { BackupClusterResult } from '../../workflows/backup-cluster';
import { minioClient, minioStorage } from '../support/bed';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { recover } from '../support/recovery';
import { startTestWorker, type RunningWorker } from '../support/worker';

const BUCKET = 'trust';

/**
 * Issue 21, defect 1 and 2, as an attacker with write access to the bucket and no key would try it: a genuine manifest
 * is signed over its content, not its place, so it is copied to a key that sorts newest, or from another cluster that
 * shares the key ring, or planted unsigned with a huge revision. None of it may steer what "latest" restores, what the
 * health check and the revision floor compare with, what retention keeps, or how far a restore bumps the revision.
 * etcd only (no kube-apiserver): these cases read the bucket and plan; none restores.
 */
describe('a backup is believed only where its content says it was written', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let a: ClusterConfig;
  let older: BackupClusterResult;
  let newer: BackupClusterResult;
  let other: BackupClusterResult;
  const s3 = minioClient();
  const deps = () => ({ config: worker.config, logger: pino({ level: 'silent' }) });
  const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  const copy = (from: string, to: string) => s3.send(new CopyObjectCommand({ Bucket: BUCKET, CopySource: `${BUCKET}/${from}`, Key: to }));
  const remove = (key: string) => s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
  const text = async (key: string) => (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString();
  const etcdPut = (k: string) => cluster.controlPlane.exec(['etcdctl', ...etcdctlArgs(), 'put', `/registry/configmaps/default/${k}`, k]);
  const failureOf = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (err: unknown) => (err instanceof WorkflowFailedError ? (err.cause as Error & { type?: string }) : (err as Error)),
    );

  beforeAll(async () => {
    const key = await keyFile();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: 'trust', etcdLine: '3.6', withApiserver: false, storage: minioStorage(BUCKET) });
    a = withBackup(cluster, { encryptionKey: 'k1' });
    // A second cluster sharing the key ring (the same node stands in for it): its genuine backups are signed alike.
    const b = { ...a, name: 'trust-b' };
    worker = await startTestWorker([a, b], { encryptionKeys: { k1: { file: key.path } } });
    await etcdPut('first');
    older = await runBackup(worker.client, worker.taskQueue, 'trust');
    for (let i = 0; i < 5; i++) await etcdPut(`second-${i}`);
    newer = await runBackup(worker.client, worker.taskQueue, 'trust');
    other = await runBackup(worker.client, worker.taskQueue, 'trust-b');
    expect(Number(newer.revision)).toBeGreaterThan(Number(older.revision));
  });
  afterAll(async () => {
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  it('a genuine older manifest copied to a key that sorts newest is passed over by latest, by key, the health check, the floor and retention', async () => {
    const copied = `lifeboat/trust/etcd/20991231T235959Z-rev${older.revision}.manifest.json`;
    await copy(older.manifestKey, copied);
    try {
      const planned = await recover(worker.client, worker.taskQueue, { cluster: 'trust', dryRun: true });
      expect(planned.plan.snapshot.manifestKey).toBe(newer.manifestKey);
      expect(planned.plan.skipped).toContainEqual({ manifestKey: copied, reason: expect.stringMatching(/copied or renamed/) });

      const byKey = await failureOf(recover(worker.client, worker.taskQueue, { cluster: 'trust', dryRun: true, snapshot: copied }));
      expect(byKey).toMatchObject({ type: 'UnauthenticatedManifest', message: expect.stringMatching(/copied or renamed/) });

      const health = await newestBackup(a, (id) => loadEncryptionKey(worker.config, id), 30_000, new Date());
      expect(health).toMatchObject({ key: newer.snapshotKey, revision: newer.revision });
      expect(health?.passedOver?.join('\n')).toContain(copied);

      expect(await newestAuthenticBackup(deps(), a)).toMatchObject({ key: newer.snapshotKey, revision: newer.revision });

      const retention = await applyRetention(deps())({ cluster: 'trust', now: new Date().toISOString(), dryRun: true });
      expect([...retention.kept, ...retention.deleted].map((k) => k.key)).not.toContain(copied);
      expect(retention.kept.map((k) => k.key)).toContain(newer.manifestKey);
      expect(retention.passedOver.map((p) => p.manifestKey)).toContain(copied);
    } finally {
      await remove(copied);
    }
  });

  it("another cluster's genuine backup copied into this cluster's folder is passed over, and refused by key", async () => {
    const planted = `lifeboat/trust/etcd/${other.manifestKey.split('/').pop()}`;
    await copy(other.manifestKey, planted);
    try {
      const planned = await recover(worker.client, worker.taskQueue, { cluster: 'trust', dryRun: true });
      expect(planned.plan.snapshot.manifestKey).toBe(newer.manifestKey);
      const byKey = await failureOf(recover(worker.client, worker.taskQueue, { cluster: 'trust', dryRun: true, snapshot: planted }));
      expect(byKey).toMatchObject({ type: 'UnauthenticatedManifest', message: expect.stringMatching(/a backup of cluster "trust-b"/) });
    } finally {
      await remove(planted);
    }
  });

  it('an unsigned manifest with a revision past 2^53, at the key its content gives, moves neither the floor nor the revision bump', async () => {
    const genuine = JSON.parse(await text(newer.manifestKey)) as Record<string, unknown> & { etcd: object; auth?: unknown };
    const revision = '9007199254740993'; // 2^53 + 1: a JS number cannot hold it
    const base = newer.manifestKey.replace(/-rev\d+\.manifest\.json$/, `-rev${revision}`);
    const { auth: _auth, ...unsigned } = genuine;
    const planted = `${base}.manifest.json`;
    const body = JSON.stringify({ ...unsigned, etcd: { ...genuine.etcd, revision } });
    await put(planted, body);
    try {
      expect(await newestAuthenticBackup(deps(), a)).toMatchObject({ revision: newer.revision });
      const planned = await recover(worker.client, worker.taskQueue, { cluster: 'trust', dryRun: true });
      expect(planned.plan.snapshot.manifestKey).toBe(newer.manifestKey);
      expect(planned.plan.knownRevisions?.newestBackup).toBe(newer.revision);
      expect(Number(planned.plan.revisionBump)).toBeLessThanOrEqual(REVISION_BUMP + Number(newer.revision));
    } finally {
      await remove(planted);
    }
  });

  it('a manifest that does not read back as a usable backup fails the backup and is removed, never left as a success', async () => {
    const m = await readManifest(s3, BUCKET, newer.manifestKey);
    const { auth: _auth, ...unsigned } = m;
    // Written where its content does not belong: no reader would ever believe it.
    const key = newer.manifestKey.replace(/-rev\d+\.manifest\.json$/, '-rev1.manifest.json');
    const failure = await writeManifest(deps())({ cluster: 'trust', key, manifest: unsigned }).then(
      () => undefined,
      (err: Error & { type?: string }) => err,
    );
    expect(failure).toMatchObject({ type: 'ManifestUnreadable', message: expect.stringMatching(/does not read back as a usable backup/) });
    expect((await listObjects(s3, BUCKET, key)).map((o) => o.key)).toEqual([]);
  });

  it('a drill report is believed only beside the backup it names, and only signed where the cluster signs', async () => {
    const rules = trustRulesFor(worker.config, a);
    const k1 = { key: await loadEncryptionKey(worker.config, 'k1'), keyId: 'k1' };
    const report: DrillReport = {
      format: 'lifeboat-drill/v1',
      cluster: 'trust',
      manifestKey: older.manifestKey,
      result: 'passed',
      started: new Date().toISOString(),
      finished: new Date().toISOString(),
      durationSeconds: 1,
      checks: [],
      problems: [],
      countedThrough: 'etcd',
      counts: { matched: [], differed: [] },
      sampled: {},
      certificates: [],
      passedOver: [],
      workflow: { workflowId: 'w', runId: 'r' },
      engineVersion: 'test',
    };
    const genuineKey = await writeDrillReport(s3, BUCKET, report, k1);
    const copiedKey = drillReportKeyOf(newer.manifestKey);
    try {
      expect(await readDrillReport(s3, rules, older.manifestKey)).toMatchObject({ result: 'passed' });
      await copy(genuineKey, copiedKey);
      await expect(readDrillReport(s3, rules, newer.manifestKey)).rejects.toThrow(/copied, so not believed/);
      await writeDrillReport(s3, BUCKET, { ...report, manifestKey: newer.manifestKey });
      await expect(readDrillReport(s3, rules, newer.manifestKey)).rejects.toThrow(/is not signed/);
    } finally {
      await remove(genuineKey);
      await remove(copiedKey);
    }
  });

  it('an import whose name dates it after the object was written is refused before anything is read', async () => {
    await put('runbook/etcd-snapshot-2099-01-01-00-00.db', 'not even a snapshot');
    const before = await listObjects(s3, BUCKET, 'lifeboat/trust/');
    const failure = await failureOf(
      worker.client.workflow.execute(importBackup, {
        taskQueue: worker.taskQueue,
        workflowId: `import-trust-${Date.now()}`,
        args: [{ cluster: 'trust', key: 'runbook/etcd-snapshot-2099-01-01-00-00.db' }],
      }),
    );
    expect(failure?.message).toMatch(/dated 2099-01-01T00:00:00.000Z by its name, after the object was written/);
    expect(failure).toMatchObject({ type: 'ImportTimeImplausible' });
    expect(await listObjects(s3, BUCKET, 'lifeboat/trust/')).toEqual(before);
  });
});
