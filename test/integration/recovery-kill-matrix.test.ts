import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { readFile } from 'node:fs/promises';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { listObjects } from '../../src/backup/catalog';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { fillEtcd } from '../../sandbox/fill';
import { waitFor } from '../../src/devserver/processes';
import { workerProcess } from '../support/worker-process';
import { keyFile, runBackup } from '../support/backups';
import { minioClient, minioStorage, testBed } from '../support/bed';
import { attemptsOf, KillableWorker } from '../support/kill';
import { createConfigMapWhenWritable, replaceSnapshotKeepingCounts, startRecovery } from '../support/recovery';
import { backupCluster } from '../../workflows';
import { runKeyOf } from '../../workflows/run-key';
import type { BackupClusterResult } from '../../workflows/backup-cluster';

/**
 * The worker killed with SIGKILL (a crash, an OOM kill, a node reboot) in the middle of each step of a recovery and of
 * a backup's snapshot, with a second worker on the task queue (a fleet's standby; a replacement is started once it
 * has taken over): Temporal retries the step on the survivor once the killed attempt's heartbeat stops, and the step
 * must pick up where the node is instead of doing anything twice. fetch and the wait for the control plane
 * to start are in recovery-durability.test.ts. One cluster for all cases: each ends with it healthy.
 */
const BUCKET = 'killmatrix';
const CLUSTER = 'km';

describe('a worker killed (SIGKILL) during each recovery step and during a backup snapshot', () => {
  let cluster: SandboxCluster;
  let admin: KubeClient;
  let worker: KillableWorker;
  let client: Client;
  let connection: Connection;
  let taskQueue: string;
  let key: Awaited<ReturnType<typeof keyFile>>;
  let base: BackupClusterResult;
  const s3 = minioClient();

  const node = () => cluster.controlPlane;
  const sh = (script: string) => node().exec(['bash', '-c', script]);
  const lines = (text: string) => text.split('\n').filter(Boolean).sort();
  const etcdEntries = async () => lines(await sh('ls -A /var/lib | grep ^etcd || true'));
  const markers = async (dir: string) => lines(await sh(`ls -A ${dir} | grep '^\\.lifeboat-restored-' || true`));
  const manifestSums = (dir: string) => sh(`cd ${dir} && sha256sum *.yaml`);
  /** Processes on the node whose command line names this run (an orphaned etcdutl, say); the pattern skips pgrep itself. */
  const processesOf = async (runKey: string) => (await sh(`pgrep -af '[${runKey[0]}]${runKey.slice(1)}' || true`)).trim();
  const configMaps = async () => (await admin.list('/api/v1/namespaces/default/configmaps')).map((c) => c.metadata.name);
  const apiAnswers = () => waitFor('the API to answer', async () => (await configMaps()).length > 0, 180_000, 1000);

  beforeAll(async () => {
    key = await keyFile();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: CLUSTER, etcdLine: '3.6', withApiserver: true, storage: minioStorage(BUCKET) });
    admin = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
    const w = await workerProcess(
      CLUSTER,
      { ...cluster.config, backup: { ...cluster.config.backup, encryptionKey: 'k1', compression: 'none' } },
      key.path,
    );
    taskQueue = w.taskQueue;
    worker = new KillableWorker(w.launch, 2);
    connection = await Connection.connect({ address: testBed().temporalAddress });
    client = new Client({ connection });
    // ~60 MiB, so the restore and the snapshot last long enough to be interrupted on the node.
    await fillEtcd(cluster, 60, 1024 * 1024);
    await createConfigMapWhenWritable(admin, 'before-backup');
    base = await runBackup(client, taskQueue, CLUSTER);
  });
  afterAll(async () => {
    await worker?.stop();
    await connection?.close();
    await cluster?.destroy();
    s3.destroy();
  });

  /** How to tell each step is under way on the node (not just handed to the worker). */
  const underWay: Record<string, (runKey: string) => Promise<boolean>> = {
    // The manifests are gone from the kubelet's folder: the step is waiting for etcd and kube-apiserver to stop.
    stopControlPlane: async () => (await sh('ls /etc/kubernetes/manifests | grep -c yaml || true')).trim() === '0',
    // etcdutl is writing the restored data dir.
    restoreEtcdData: async (runKey) => (await processesOf(runKey)).includes('snapshot restore'),
    verifyApi: async () => true,
  };

  // startControlPlane (the wait for etcd and /readyz) is killed in recovery-durability.test.ts.
  it.each(['stopControlPlane', 'restoreEtcdData', 'verifyApi'])(
    'killed during %s: the recovery completes, the data dir was swapped once, the originals are kept once',
    async (activity) => {
      await apiAnswers();
      const gone = `after-backup-${activity.toLowerCase()}`;
      await createConfigMapWhenWritable(admin, gone);
      const before = {
        entries: await etcdEntries(),
        markers: await markers('/var/lib/etcd'),
        manifests: await manifestSums('/etc/kubernetes/manifests'),
      };
      const started = Date.now();
      const handle = await startRecovery(client, taskQueue, {
        cluster: CLUSTER,
        snapshot: base.snapshotKey,
        approval: 'auto',
        overrideCooldown: true,
        controlPlaneTimeoutSeconds: 180,
      });
      const runKey = runKeyOf(handle.firstExecutionRunId);
      const killed = await worker.killDuring(handle, activity, () => underWay[activity](runKey));
      const survivor = worker.identities()[0];
      const result = await handle.result();
      const takeover = await killed!.takeover();
      console.log(
        `kill during ${activity}: takeover_s=${takeover.seconds.toFixed(1)} by the standby; recovery took ${Math.round((Date.now() - started) / 1000)} s`,
      );
      expect(result.outcome).toBe('restored');
      // The standby finished the step, within its heartbeat timeout (at most 30 s) and the retry's back-off.
      expect(takeover.by).toBe(survivor);
      expect(takeover.seconds).toBeLessThanOrEqual(40);
      const history = await handle.fetchHistory();
      expect(attemptsOf(history, activity)).toEqual([expect.any(Number)]);
      expect(attemptsOf(history, activity)[0]).toBeGreaterThanOrEqual(2); // the killed attempt was retried
      expect(attemptsOf(history, 'restoreEtcdData')).toHaveLength(1);

      // The backup's objects are back, the one written after it is gone.
      const names = await configMaps();
      expect(names).toContain('before-backup');
      expect(names).not.toContain(gone);
      // Swapped once: one new moved-aside dir, holding exactly what was live before (not a restored copy moved aside
      // a second time); no half-restored or rolled-back leftovers.
      expect(await etcdEntries()).toEqual([...before.entries, `etcd.before-${runKey}`].sort());
      expect(await markers('/var/lib/etcd')).toEqual([`.lifeboat-restored-${runKey}`]);
      expect(await markers(`/var/lib/etcd.before-${runKey}`)).toEqual(before.markers);
      expect(result.previousDataDir).toBe(`/var/lib/etcd.before-${runKey}`);
      // The manifests moved aside are the ones that ran before, byte for byte.
      expect(await manifestSums(result.plan.paths.asideManifestsDir)).toBe(before.manifests);
      expect(await processesOf(runKey)).toBe('');
    },
    420_000,
  );

  let second: BackupClusterResult;
  it('killed during the backup snapshot: one backup (objects and manifest), no snapshot file left on the node', async () => {
    await apiAnswers();
    for (const n of [1, 2, 3]) await createConfigMapWhenWritable(admin, `extra-${n}`);
    const prefix = `${cluster.config.storage.prefix ?? ''}`;
    const objectsBefore = new Set((await listObjects(s3, BUCKET, prefix)).map((o) => o.key));
    const handle = await client.workflow.start(backupCluster, {
      taskQueue,
      workflowId: `backup-${CLUSTER}-killed`,
      args: [{ cluster: CLUSTER }],
    });
    const runKey = runKeyOf(handle.firstExecutionRunId);
    await worker.killDuring(
      handle,
      'takeSnapshot',
      async () => (await sh('ls /var/lib/lifeboat/backups/*/snapshot.db.part 2>/dev/null || true')) !== '',
    );
    second = await handle.result();
    const history = await handle.fetchHistory();
    expect(attemptsOf(history, 'takeSnapshot')[0]).toBeGreaterThanOrEqual(2);
    const added = (await listObjects(s3, BUCKET, prefix)).map((o) => o.key).filter((k) => !objectsBefore.has(k));
    expect(added.sort()).toEqual([second.snapshotKey, second.controlPlaneFilesKey, second.manifestKey].sort());
    expect((await sh('ls -A /var/lib/lifeboat/backups')).trim()).toBe('');
    expect(await processesOf(runKey)).toBe('');
  }, 300_000);

  it('killed during the rollback after a real verification failure: the node is back as it was, the API answers with its objects', async () => {
    await apiAnswers();
    await createConfigMapWhenWritable(admin, 'kept-through-rollback');
    const before = {
      entries: await etcdEntries(),
      markers: await markers('/var/lib/etcd'),
      manifests: await manifestSums('/etc/kubernetes/manifests'),
    };
    // The first backup now holds the second's snapshot (see replaceSnapshotKeepingCounts): the restore works, the
    // configmaps it brings back are three more than the first backup recorded.
    const putBack = await replaceSnapshotKeepingCounts(s3, BUCKET, base, second, key.key, 'k1');
    try {
      const handle = await startRecovery(client, taskQueue, {
        cluster: CLUSTER,
        snapshot: base.snapshotKey,
        approval: 'auto',
        overrideCooldown: true,
        controlPlaneTimeoutSeconds: 180,
      });
      const runKey = runKeyOf(handle.firstExecutionRunId);
      await worker.killDuring(
        handle,
        'rollbackRecovery',
        async () => (await sh(`ls /var/lib/lifeboat/recoveries/${runKey}/manifests-failed 2>/dev/null || true`)).trim() !== '',
      );
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause as Error & { type?: string };
      expect(cause.type).toBe('VerificationFailed');
      expect(cause.message).toMatch(/configmaps \d+ \(backup: \d+\)/);
      const history = await handle.fetchHistory();
      expect(attemptsOf(history, 'rollbackRecovery')[0]).toBeGreaterThanOrEqual(2);
      // The original data dir is back in place, the restored one kept once as .failed-<run>; no moved-aside copy left.
      expect(await etcdEntries()).toEqual([...before.entries, `etcd.failed-${runKey}`].sort());
      expect(await markers('/var/lib/etcd')).toEqual(before.markers);
      expect(await markers(`/var/lib/etcd.failed-${runKey}`)).toEqual([`.lifeboat-restored-${runKey}`]);
      expect(await manifestSums('/etc/kubernetes/manifests')).toBe(before.manifests);
      await waitFor(
        'the pre-recovery objects through the API',
        async () => (await configMaps()).includes('kept-through-rollback'),
        180_000,
        1000,
      );
      expect(await processesOf(runKey)).toBe('');
    } finally {
      await putBack();
    }
  }, 420_000);
});
