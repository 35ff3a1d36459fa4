import { HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { serverBinaries } from '../../src/devserver/binaries';
import { startMinio, type MinioServer } from '../../sandbox/minio';
import { waitFor } from '../../src/devserver/processes';
import type { StorageConfig } from '../../src/config/schema';
import { directModeOf, keyFile, withBackup } from '../support/backups';
import { fillEtcd } from '../../sandbox/fill';
import { startTestWorker } from '../support/worker';
import { backupCluster } from '../../workflows';
import { streamToS3 } from '../../src/backup/stream-to-s3';
import type { WorkflowHandle } from '@temporalio/client';
import { withSession, type NodeSession } from '../../src/ssh/session';
import { slowLink } from '../support/slow-link';

/** Waits until the bucket shows a multipart upload in progress: the moment the backup is mid-transfer. */
async function uploadInProgress(s3: S3Client, bucket: string): Promise<void> {
  await waitFor(
    'a multipart upload in progress',
    async () => ((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).length > 0,
    120_000,
    50,
  );
}

/** `promise`, or a failure naming what is still pending after `ms`: a hang fails the test instead of wedging jest. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** How a promise ended, once it has. */
const settled = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    () => 'rejected',
  );

/**
 * The first activity of the workflow that had to be retried (its step and why the attempt before failed), looked for
 * until `running` settles. Attempts before the last are not in the history: they are read from the pending activities.
 */
async function firstRetry(handle: WorkflowHandle, running: Promise<unknown>): Promise<string | undefined> {
  let over = false;
  void running.then(
    () => (over = true),
    () => (over = true),
  );
  while (!over) {
    const retried = ((await handle.describe()).raw.pendingActivities ?? []).find((a) => (a.attempt ?? 1) > 1);
    if (retried) return `${retried.activityType?.name} at attempt ${retried.attempt}: ${retried.lastFailure?.message}`;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  return undefined;
}

async function objectsUnder(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  return ((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!).sort();
}

describe('backups survive faults mid-upload', () => {
  let cluster: SandboxCluster;
  let minio: MinioServer;
  let s3: S3Client;
  let storage: StorageConfig;
  let key: { path: string; key: Buffer };

  beforeAll(async () => {
    // A MinIO of this file's own, so stopping it does not disturb other tests.
    minio = await startMinio((await serverBinaries()).minio, await mkdtemp(join(tmpdir(), 'lifeboat-minio-faults-')));
    await minio.createBucket('faults');
    s3 = minio.client();
    process.env.LIFEBOAT_FAULTS_S3_KEY = minio.accessKeyId;
    process.env.LIFEBOAT_FAULTS_S3_SECRET = minio.secretAccessKey;
    storage = {
      bucket: 'faults',
      prefix: 'lifeboat',
      region: minio.region,
      endpoint: minio.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: { env: 'LIFEBOAT_FAULTS_S3_KEY' }, secretAccessKey: { env: 'LIFEBOAT_FAULTS_S3_SECRET' } },
    };
    key = await keyFile();
    cluster = await createSandboxCluster({ name: 'faults', etcdLine: '3.6', withApiserver: false, storage });
    // ~160 MiB of incompressible values, so the transfer lasts long enough to be interrupted.
    await fillEtcd(cluster, 160, 1024 * 1024);
  });
  afterAll(async () => {
    await cluster?.destroy();
    s3?.destroy();
    await minio?.stop();
  });

  it('completes when S3 goes down during the upload and comes back, leaving no multipart upload behind', async () => {
    const worker = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1', compression: 'none' }, storage)], {
      encryptionKeys: { k1: { file: key.path } },
    });
    try {
      const handle = await worker.client.workflow.start(backupCluster, {
        taskQueue: worker.taskQueue,
        workflowId: `faults-s3-${Date.now()}`,
        args: [{ cluster: 'faults' }],
      });
      await uploadInProgress(s3, 'faults');
      await minio.stop();
      await new Promise((r) => setTimeout(r, 4_000));
      await minio.restart();
      const result = await handle.result();
      expect(result.plainBytes).toBeGreaterThan(150 * 1024 * 1024);
      const uploads = await minio.client().send(new ListMultipartUploadsCommand({ Bucket: 'faults' }));
      expect(uploads.Uploads ?? []).toEqual([]);
      expect(await objectsUnder(s3, 'faults', result.snapshotKey.replace(/\.db.*$/, ''))).toEqual(
        [result.snapshotKey, result.controlPlaneFilesKey, result.manifestKey].sort(),
      );
      // The activity really failed and was retried: more than one attempt.
      const history = await handle.fetchHistory();
      const uploadAttempts = (history.events ?? []).filter(
        (e) => e.activityTaskStartedEventAttributes && (e.activityTaskStartedEventAttributes.attempt ?? 1) > 1,
      );
      expect(uploadAttempts.length).toBeGreaterThan(0);
    } finally {
      await worker.stop();
    }
  });

  // Issue 26 (docs/soak.md, "stuck"): before its first byte the control-plane archive makes about a dozen SSH round
  // trips (login, ls, cat, probe, tar listing); on a link where each takes seconds, an activity that heartbeated only
  // on bytes was timed out at every attempt. Direct mode: the 160 MiB snapshot comes from etcd, not through the slow link.
  it('completes at its first attempt when the SSH round trips before the first byte outlast the heartbeat timeout', async () => {
    const config = withBackup(cluster, { encryptionKey: 'k1', compression: 'none' }, storage);
    const direct = await directModeOf(cluster, '3.6');
    // 2 s more per round trip: the SSH login (about 6 of them) stays within its 20 s ready timeout.
    const link = await slowLink(cluster.controlPlane.ip, 22, 1_000);
    const node = { ...config.nodes[0], host: '127.0.0.1', port: link.port };
    let handle: WorkflowHandle<typeof backupCluster> | undefined;
    const worker = await startTestWorker([{ ...config, nodes: [node], etcd: { ...config.etcd, direct } }], {
      encryptionKeys: { k1: { file: key.path } },
    }).catch(async (err: unknown) => {
      await link.close();
      throw err;
    });
    try {
      handle = await worker.client.workflow.start(backupCluster, {
        taskQueue: worker.taskQueue,
        workflowId: `faults-slow-ssh-${Date.now()}`,
        args: [{ cluster: 'faults' }],
      });
      const running = handle.result();
      running.catch(() => undefined);
      expect(await firstRetry(handle, running)).toBeUndefined();
      const result = await running;
      expect(await objectsUnder(s3, 'faults', result.snapshotKey.replace(/\.db.*$/, ''))).toEqual(
        [result.snapshotKey, result.controlPlaneFilesKey, result.manifestKey].sort(),
      );
      const events = (await handle.fetchHistory()).events ?? [];
      const attempts = events.flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt] : []));
      expect(attempts.length).toBeGreaterThan(0);
      expect(attempts.filter((a) => a !== 1)).toEqual([]);
      // The link was slow enough: the archive's step outlasted the 30 s heartbeat timeout.
      const archive = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'uploadControlPlaneFiles');
      const done = events.find(
        (e) => e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === archive?.eventId?.toString(),
      );
      const seconds = (e: typeof archive) => Number(e?.eventTime?.seconds ?? 0);
      expect(seconds(done) - seconds(archive)).toBeGreaterThan(30);
    } finally {
      // Failed: its retries would otherwise go on after the worker stops.
      await handle?.terminate('test over').catch(() => undefined);
      await worker.stop();
      await link.close();
      await Promise.all([dirname(direct.caFile), direct.workDir].map((d) => rm(d, { recursive: true, force: true })));
    }
  }, 120_000);

  // The activity's own streams, without the worker around them: an upload that stops while the node is still
  // sending must end at once and release the SSH channel. (Since Node 22 stream.pipeline waits for every stream to
  // end; ssh2's channel never ended once its reader had stopped, and these waited forever.)
  describe('a transfer from the node that stops early', () => {
    const MiB = 1024 * 1024;
    const onNode = <T>(body: (s: NodeSession) => Promise<T>) => withSession(cluster.config.nodes[0], body);

    it('a session closed by its cancellation signal fails with the cancellation, not with the closed connection', async () => {
      const cancel = new AbortController();
      const reason = new Error('cancelled by the test');
      const running = withSession(cluster.config.nodes[0], (s) => s.run(['sleep', '30']), { signal: cancel.signal });
      setTimeout(() => cancel.abort(reason), 1_000);
      const t0 = Date.now();
      await expect(within(20_000, 'the cancelled session', running)).rejects.toBe(reason);
      expect(Date.now() - t0).toBeLessThan(15_000);
    });

    it("fails with the store's error when the store refuses the upload, and releases the SSH channel", () =>
      onNode(async (ssh) => {
        const remote = await ssh.stream(['head', '-c', String(512 * MiB), '/dev/zero']);
        const err = await within(
          20_000,
          'the refused upload',
          streamToS3({
            s3,
            bucket: 'no-such-bucket',
            key: 'refused.db',
            source: remote.stdout,
            compression: 'none',
            encryption: { key: key.key, keyId: 'k1' },
          }),
        ).catch((e: unknown) => e);
        expect(err).toMatchObject({ name: 'NoSuchBucket' });
        expect(['resolved', 'rejected']).toContain(await within(20_000, 'the SSH channel', settled(remote.done)));
      }));

    it('stops at once when cancelled mid-upload, leaving no multipart upload, and releases the SSH channel', () =>
      onNode(async (ssh) => {
        const remote = await ssh.stream(['head', '-c', String(1024 * MiB), '/dev/zero']);
        const cancel = new AbortController();
        const storing = streamToS3({
          s3,
          bucket: 'faults',
          key: 'cancelled.db',
          source: remote.stdout,
          compression: 'none',
          encryption: { key: key.key, keyId: 'k1' },
          signal: cancel.signal,
        });
        storing.catch(() => undefined);
        await uploadInProgress(s3, 'faults');
        cancel.abort(new Error('cancelled by the test'));
        const err = await within(20_000, 'the cancelled upload', storing).catch((e: unknown) => e);
        expect(err).toMatchObject({ name: 'AbortError' });
        expect(['resolved', 'rejected']).toContain(await within(20_000, 'the SSH channel', settled(remote.done)));
        expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'faults', Prefix: 'cancelled.db' }))).Uploads ?? []).toEqual([]);
        await expect(s3.send(new HeadObjectCommand({ Bucket: 'faults', Key: 'cancelled.db' }))).rejects.toMatchObject({
          $metadata: { httpStatusCode: 404 },
        });
      }));
  });
});
