import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { readFile } from 'node:fs/promises';
import { readManifest } from '../../src/backup/catalog';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { waitFor } from '../../src/devserver/processes';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { minioClient, minioStorage } from '../support/bed';
import { activityRunning } from '../support/kill';
import { createConfigMapWhenWritable, replaceSnapshotKeepingCounts, startRecovery } from '../support/recovery';
import { startTestWorker, type RunningWorker } from '../support/worker';
import { progressQuery } from '../../workflows';
import { runKeyOf } from '../../workflows/run-key';
import type { BackupClusterResult } from '../../workflows/backup-cluster';

/**
 * Rollback by real failures after the control plane was stopped (not by a flag or a stub): a restore that fails on the
 * node and a verification that finds a real mismatch. After each the node is as it was: the original data dir and
 * manifests back, the cluster answering with the objects it had before the recovery. With keepRestoredOnFailure the
 * restored state stays and the failure says where everything is.
 */
const BUCKET = 'rollback';
const CLUSTER = 'rb';

describe('rollback after real failures (etcd 3.6 + kube-apiserver)', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let admin: KubeClient;
  let key: Awaited<ReturnType<typeof keyFile>>;
  let first: BackupClusterResult;
  let second: BackupClusterResult;
  const s3 = minioClient();

  const sh = (script: string) => cluster.controlPlane.exec(['bash', '-c', script]);
  const lines = (text: string) => text.split('\n').filter(Boolean).sort();
  const etcdEntries = async () => lines(await sh('ls -A /var/lib | grep ^etcd || true'));
  const markers = async (dir: string) => lines(await sh(`ls -A ${dir} | grep '^\\.lifeboat-restored-' || true`));
  const manifestSums = (dir: string) => sh(`cd ${dir} && sha256sum *.yaml`);
  const configMaps = async () => (await admin.list('/api/v1/namespaces/default/configmaps')).map((c) => c.metadata.name);
  const createConfigMap = (name: string) => createConfigMapWhenWritable(admin, name);
  const nodeState = async () => ({
    entries: await etcdEntries(),
    markers: await markers('/var/lib/etcd'),
    manifests: await manifestSums('/etc/kubernetes/manifests'),
  });
  const failureOf = async (handle: WorkflowHandle) => {
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    return (err as WorkflowFailedError).cause as Error & { type?: string };
  };
  const recoverFrom = (backup: BackupClusterResult, extra: { keepRestoredOnFailure?: boolean } = {}) =>
    startRecovery(worker.client, worker.taskQueue, {
      cluster: CLUSTER,
      snapshot: backup.snapshotKey,
      approval: 'auto',
      overrideCooldown: true,
      controlPlaneTimeoutSeconds: 180,
      ...extra,
    });
  /** The node as it was: the original data dir and manifests in place, nothing moved aside left but `leftover`. */
  const expectNodeAsBefore = async (before: Awaited<ReturnType<typeof nodeState>>, leftover: string[]) => {
    expect(await etcdEntries()).toEqual([...before.entries, ...leftover].sort());
    expect(await markers('/var/lib/etcd')).toEqual(before.markers);
    expect(await manifestSums('/etc/kubernetes/manifests')).toBe(before.manifests);
  };

  beforeAll(async () => {
    key = await keyFile();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: CLUSTER, etcdLine: '3.6', withApiserver: true, storage: minioStorage(BUCKET) });
    admin = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
    worker = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1' })], { encryptionKeys: { k1: { file: key.path } } });
    await createConfigMap('in-first');
    first = await runBackup(worker.client, worker.taskQueue, CLUSTER);
    for (const n of [1, 2, 3]) await createConfigMap(`extra-${n}`);
    second = await runBackup(worker.client, worker.taskQueue, CLUSTER);
  });
  afterAll(async () => {
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  it('a restore that fails on the node (the fetched snapshot damaged after its check) rolls back: data dir, manifests and objects as before', async () => {
    await createConfigMap('made-before-failed-restore');
    const before = await nodeState();
    const handle = await recoverFrom(first);
    const runKey = runKeyOf(handle.firstExecutionRunId);
    // The fetch step checked the file's SHA-256; while the control plane stops, something on the node (a disk
    // error, another tool) damages it. etcd's own hash check at restore time is what catches it now.
    await waitFor('the stop step to run', () => activityRunning(handle, 'stopControlPlane'), 180_000, 50);
    const snapshot = `/var/lib/lifeboat/recoveries/${runKey}/snapshot.db`;
    await sh(`head -c 4096 /dev/urandom | dd of=${snapshot} bs=4096 seek=$(( $(stat -c %s ${snapshot}) / 8192 )) conv=notrunc status=none`);
    const cause = await failureOf(handle);
    expect(cause.type).toBe('RestoreFailed');
    expect(cause.message).toMatch(/^cluster "rb", step restore: etcdutl snapshot restore failed on node "cp1": /);
    const progress = await handle.query(progressQuery);
    expect(progress.steps.find((s) => s.step === 'restore')).toMatchObject({ status: 'compensated' });
    await expectNodeAsBefore(before, []);
    await waitFor(
      'the objects from before the recovery',
      async () => (await configMaps()).includes('made-before-failed-restore'),
      180_000,
      1000,
    );
  }, 300_000);

  it('a verification that finds a real mismatch (VerificationFailed) rolls back: data dir, manifests and objects as before', async () => {
    // The first backup made to hold the second's snapshot, re-signed with the right key (replaceSnapshotKeepingCounts):
    // every check before the restore passes, the restore and the start work, and the API then holds the three
    // configmaps made between the two backups, which the first backup's recorded counts do not.
    const recorded = (await readManifest(s3, BUCKET, first.manifestKey)).resourceCounts.configmaps;
    const putBack = await replaceSnapshotKeepingCounts(s3, BUCKET, first, second, key.key, 'k1');
    try {
      await createConfigMap('made-before-failed-verify');
      const before = await nodeState();
      const handle = await recoverFrom(first);
      const runKey = runKeyOf(handle.firstExecutionRunId);
      const cause = await failureOf(handle);
      expect(cause.type).toBe('VerificationFailed');
      expect(cause.message).toContain(`the restored API does not match the backup: configmaps ${recorded + 3} (backup: ${recorded})`);
      const progress = await handle.query(progressQuery);
      expect(progress.steps.find((s) => s.step === 'verify')).toMatchObject({ status: 'compensated' });
      expect(progress.steps.find((s) => s.step === 'start control plane')).toMatchObject({ status: 'done' });
      // The restored dir is kept once, for a post-mortem; the original is back.
      await expectNodeAsBefore(before, [`etcd.failed-${runKey}`]);
      expect(await markers(`/var/lib/etcd.failed-${runKey}`)).toEqual([`.lifeboat-restored-${runKey}`]);
      await waitFor(
        'the objects from before the recovery',
        async () => (await configMaps()).includes('made-before-failed-verify'),
        180_000,
        1000,
      );
    } finally {
      await putBack();
    }
  }, 300_000);

  it('with keepRestoredOnFailure the restored data dir stays in use, the previous one beside it, and the failure says where', async () => {
    const putBack = await replaceSnapshotKeepingCounts(s3, BUCKET, first, second, key.key, 'k1');
    try {
      await createConfigMap('made-before-kept');
      const before = await nodeState();
      const handle = await recoverFrom(first, { keepRestoredOnFailure: true });
      const runKey = runKeyOf(handle.firstExecutionRunId);
      const cause = await failureOf(handle);
      expect(cause.type).toBe('VerificationFailed');
      expect(cause.message).toMatch(
        new RegExp(
          `; kept as restored \\(keepRestoredOnFailure\\): the restored data dir is /var/lib/etcd, the previous one /var/lib/etcd\\.before-${runKey}, the original manifests in /var/lib/lifeboat/recoveries/${runKey}/manifests-before$`,
        ),
      );
      expect(await etcdEntries()).toEqual([...before.entries, `etcd.before-${runKey}`].sort());
      expect(await markers('/var/lib/etcd')).toEqual([`.lifeboat-restored-${runKey}`]);
      expect(await markers(`/var/lib/etcd.before-${runKey}`)).toEqual(before.markers);
      expect(await manifestSums(`/var/lib/lifeboat/recoveries/${runKey}/manifests-before`)).toBe(before.manifests);
      // The restored (second backup's) objects are what the API serves.
      const names = await configMaps();
      expect(names).toEqual(expect.arrayContaining(['in-first', 'extra-3']));
      expect(names).not.toContain('made-before-kept');
    } finally {
      await putBack();
    }
  }, 300_000);
});
