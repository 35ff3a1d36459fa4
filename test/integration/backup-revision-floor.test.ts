import { wipeControlPlane } from '../../sandbox/disaster';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import type { KubeClient } from '../../src/kube/client';
import { adminClient } from '../../sandbox/control-plane';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { advanceRevision } from '../../sandbox/fill';
import { waitFor } from '../../src/devserver/processes';
import { newestBackup } from '../../src/health/newest-backup';
import { selectSnapshot } from '../../activities/recovery/select-snapshot';
import { trustRulesFor } from '../../src/backup/trusted-catalog';
import { backupCluster } from '../../workflows';
import type { BackupClusterResult } from '../../workflows/backup-cluster';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { loadEncryptionKey } from '../../src/backup/keyring';
import type { Config } from '../../src/config/schema';
import { minioClient, minioStorage } from '../support/bed';
import { failureOf } from '../support/failures';
import { recover, startRecovery } from '../support/recovery';
import { REVISION_BUMP, restoredRevisionOf } from '../../src/recovery/plan';
import { startTestWorker, type RunningWorker } from '../support/worker';

const BUCKET = 'revision-floor';
const NAME = 'floor';

/**
 * etcd's data is lost (data dir wiped, etcd back empty, the API server refilling its default objects): the next backup
 * must not become the newest backup, or "latest" would restore the empty cluster, the health check would compare with
 * it, and retention would eventually delete the good ones. Real servers: a sandbox etcd 3.6 + kube-apiserver, MinIO,
 * the worker on the dev server. One cluster for every case, in order.
 */
describe('a backup never stores a wiped etcd as the newest backup (revision floor)', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let admin: KubeClient;
  let first: BackupClusterResult;
  const s3 = minioClient();
  const storage = minioStorage(BUCKET);
  const bucketObjects = async () =>
    ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }))).Contents ?? []).map((o) => o.Key!).sort();
  const multipartUploads = async () => (await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? [];
  /** What is left under the node's backup work dir (run folders, snapshot files). */
  const nodeLeftovers = async () =>
    (await cluster.controlPlane.exec(['bash', '-c', 'find /var/lib/lifeboat/backups -mindepth 1 2>/dev/null || true'])).trim();
  const latest = async () =>
    (await selectSnapshot(s3, trustRulesFor(worker.config, worker.config.clusters[0]), 'latest', false)).manifestKey;
  const configMaps = async () =>
    (await admin.list('/api/v1/namespaces/default/configmaps')).map((c) => c.metadata.name).filter((n) => !n.startsWith('kube-'));

  /** Kills every static pod's process and wipes etcd's data (as alert-recovery.test.ts does); waits until the API answers again. */
  const wipe = async () => {
    await wipeControlPlane(cluster.controlPlane);
    // The kubelet restarts etcd (empty) and the API server, which writes its default objects again: not "empty".
    await waitFor(
      'the API server answering again, without the objects',
      async () => !(await configMaps()).includes('before-backup'),
      180_000,
      1000,
    );
  };

  let healthNewest: () => ReturnType<typeof newestBackup>;
  beforeAll(async () => {
    const key = await keyFile();
    const keyRing = { encryptionKeys: { k1: { file: key.path } } } as unknown as Config;
    healthNewest = () =>
      newestBackup(
        { name: NAME, storage, backup: withBackup(cluster, { encryptionKey: 'k1' }).backup },
        (id) => loadEncryptionKey(keyRing, id),
        10_000,
        new Date(),
      );
    cluster = await createSandboxCluster({ name: NAME, etcdLine: '3.6', withApiserver: true, storage });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    // super-admin (system:masters): admin.conf's group is bound to cluster-admin by an object in etcd, gone with the wipe.
    admin = await adminClient(cluster.controlPlane);
    worker = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1' })], { encryptionKeys: { k1: { file: key.path } } });
    await admin.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'before-backup' } });
    // A cluster in use is far past the few hundred revisions a fresh API server writes while it bootstraps.
    await advanceRevision(cluster, 3000);
    first = await runBackup(worker.client, worker.taskQueue, NAME);
    await admin.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'after-backup' } });
  }, 300_000);
  afterAll(async () => {
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  it('etcd wiped and refilled by the API server: the backup fails RevisionRegression naming the numbers; nothing stored, nothing left on the node, "latest" unchanged', async () => {
    const before = await bucketObjects();
    expect(before).toHaveLength(3);
    await wipe();

    const failure = await failureOf(runBackup(worker.client, worker.taskQueue, NAME));
    expect(failure.type).toBe('RevisionRegression');
    const m = /revision (\d+) is below (\d+), from backup (\S+);/.exec(failure.message);
    expect(m).not.toBeNull();
    const [, revision, floor, from] = m!;
    expect(Number(revision)).toBeGreaterThan(0);
    expect(Number(revision)).toBeLessThan(Number(first.revision));
    expect(floor).toBe(first.revision);
    expect(from).toBe(first.snapshotKey);
    expect(failure.message).toContain(`cluster "${NAME}", step snapshot:`);
    expect(failure.message).toMatch(/started over from empty or older data/);
    expect(failure.message).toMatch(/Nothing was stored and the existing backups are untouched/);
    expect(failure.message).toContain(`lifeboat restore ${NAME}`);
    expect(failure.message).toContain(`lifeboat backup now ${NAME} --allow-revision-regression`);

    expect(await bucketObjects()).toEqual(before);
    expect(await multipartUploads()).toEqual([]);
    expect(await nodeLeftovers()).toBe('');
    expect(await latest()).toBe(first.manifestKey);
    // The health check's data-loss detection compares with the same backup.
    expect((await healthNewest())?.key).toBe(first.snapshotKey);
  }, 300_000);

  it('a newer manifest that is not authentic (edited, or its tag removed) neither lowers the floor nor lets the backup through', async () => {
    const text = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: first.manifestKey }))).Body!.transformToString();
    const manifest = JSON.parse(text) as { created: string; etcd: { revision: number }; auth?: unknown };
    const newer = `${storage.prefix}/${NAME}/etcd/29991231T000000Z-rev1`;
    const edited = { ...manifest, created: '2999-12-31T00:00:00.000Z', etcd: { ...manifest.etcd, revision: 1 } };
    const { auth: _auth, ...unsigned } = edited;
    for (const [what, body] of [
      ['edited', edited],
      ['unsigned', unsigned],
    ] as const) {
      const key = `${newer}-${what}.manifest.json`;
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: JSON.stringify(body) }));
      try {
        const failure = await failureOf(runBackup(worker.client, worker.taskQueue, NAME));
        expect([what, failure.type]).toEqual([what, 'RevisionRegression']);
        expect(failure.message).toContain(`below ${first.revision}, from backup ${first.snapshotKey};`);
        // Nor does the health check believe it: a forged revision must not raise or lower its data-loss floor either.
        const seen = await healthNewest();
        expect([what, seen?.key, seen?.revision]).toEqual([what, first.snapshotKey, first.revision]);
        expect(seen?.passedOver).toEqual([expect.stringContaining(key)]);
      } finally {
        await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
      }
    }
    expect(await nodeLeftovers()).toBe('');
  }, 300_000);

  it('a person allows it (allowRevisionRegression): stored, the result says which floor it overrode; later backups go through', async () => {
    const allowed = await worker.client.workflow.execute(backupCluster, {
      taskQueue: worker.taskQueue,
      workflowId: `backup-${NAME}-allowed-${Date.now()}`,
      args: [{ cluster: NAME, reason: 'etcd reset on purpose', allowRevisionRegression: true }],
    });
    expect(Number(allowed.revision)).toBeLessThan(Number(first.revision));
    expect(allowed.revisionRegressionAllowed).toEqual({ floor: first.revision, from: `backup ${first.snapshotKey}` });
    expect(await latest()).toBe(allowed.manifestKey);
    // From now on the floor is the reset cluster's backup: a normal backup is above it and goes through, marked by nothing.
    const next = await runBackup(worker.client, worker.taskQueue, NAME);
    expect(Number(next.revision)).toBeGreaterThanOrEqual(Number(allowed.revision));
    expect(next.revisionRegressionAllowed).toBeUndefined();
    expect(await latest()).toBe(next.manifestKey);
    expect(await nodeLeftovers()).toBe('');
  }, 300_000);

  it('after a successful recovery from an older backup, backups are not refused (the floor is what the restore left)', async () => {
    const recovery = await recover(worker.client, worker.taskQueue, { cluster: NAME, snapshot: first.snapshotKey, approval: 'auto' });
    expect(recovery.outcome).toBe('restored');
    expect(await configMaps()).toContain('before-backup');
    // etcd 3.6 restores with --bump-revision: etcd is past every revision it ever had, and the recovery says so.
    const after = await runBackup(worker.client, worker.taskQueue, NAME);
    expect(Number(after.revision)).toBeGreaterThan(Number(first.revision) + REVISION_BUMP - 1);
    expect(after.revisionRegressionAllowed).toBeUndefined();
    expect(await latest()).toBe(after.manifestKey);
    expect(await nodeLeftovers()).toBe('');
  }, 600_000);

  it('etcd wiped after a recovery, before any backup since: the floor is the revision that restore left, and the refusal names the recovery', async () => {
    const recovery = await recover(worker.client, worker.taskQueue, {
      cluster: NAME,
      snapshot: first.snapshotKey,
      approval: 'auto',
      overrideCooldown: true,
    });
    expect(recovery.outcome).toBe('restored');
    const restoredRevision = restoredRevisionOf(recovery.plan);
    // A dry run after it (an operator looking at a plan) is now the newest run of recover-<cluster>: the restore before
    // it still sets the floor.
    const planned = await recover(worker.client, worker.taskQueue, {
      cluster: NAME,
      snapshot: first.snapshotKey,
      dryRun: true,
      overrideCooldown: true,
    });
    expect(planned.outcome).toBe('planned');
    const before = await bucketObjects();
    await wipe();
    const failure = await failureOf(runBackup(worker.client, worker.taskQueue, NAME));
    expect(failure.type).toBe('RevisionRegression');
    expect(failure.message).toMatch(
      new RegExp(`revision \\d+ is below ${restoredRevision}, from recovery recover-${NAME} \\(ended \\S+Z\\);`),
    );
    expect(await bucketObjects()).toEqual(before);
    expect(await multipartUploads()).toEqual([]);
    expect(await nodeLeftovers()).toBe('');
  }, 600_000);

  it('below the newest backup while a recovery runs: the floor is not known yet, so the step fails retryably and stores nothing', async () => {
    const before = await bucketObjects();
    // A recovery waiting for approval: RUNNING, and whatever it restores is not known yet.
    const recovery = await startRecovery(worker.client, worker.taskQueue, { cluster: NAME, approval: 'required', overrideCooldown: true });
    const backup = await worker.client.workflow.start(backupCluster, {
      taskQueue: worker.taskQueue,
      workflowId: `backup-${NAME}-during-recovery-${Date.now()}`,
      args: [{ cluster: NAME }],
    });
    try {
      const failure = await waitFor(
        'the snapshot step failing while the recovery runs',
        async () => (await backup.describe()).raw.pendingActivities?.find((a) => a.lastFailure)?.lastFailure ?? undefined,
        120_000,
        500,
      );
      expect(failure.message).toMatch(
        new RegExp(
          `is below \\d+ of backup \\S+, and whether a recovery since explains it cannot be known now: recover-${NAME} is running`,
        ),
      );
      expect(failure.applicationFailureInfo?.type).toBe('RevisionFloorUnknown');
      expect(failure.applicationFailureInfo?.nonRetryable).toBeFalsy();
    } finally {
      await backup.terminate('test done');
      await recovery.terminate('test done');
    }
    expect(await bucketObjects()).toEqual(before);
    expect(await multipartUploads()).toEqual([]);
    // An attempt still running when the run was terminated removes its own file too when it fails.
    await waitFor('nothing left on the node', async () => (await nodeLeftovers()) === '', 60_000, 1000);
  }, 300_000);
});
