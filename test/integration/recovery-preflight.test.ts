import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { fillEtcd } from '../../sandbox/fill';
import { minioClient, minioStorage } from '../support/bed';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { nodeFingerprint, recover } from '../support/recovery';
import { clusterSchema } from '../../src/config/schema';
import { listObjects } from '../../src/backup/catalog';
import { startTestWorker, type RunningWorker } from '../support/worker';

/**
 * What the plan (and a backup's plan) refuses before anything changes: too little disk on the target (the work dir,
 * where the snapshot is fetched, as well as the data dir's filesystem; here the node's work dir is a 1 MiB tmpfs),
 * etcd tools of another minor version, a "new" node where a control plane listens, a bucket without the Object Lock
 * the config requires, a key id not in the key ring, an edited or unsigned manifest.
 */
describe('recovery preflight: refusals before anything changes', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let key: Awaited<ReturnType<typeof keyFile>>;
  let first: Awaited<ReturnType<typeof runBackup>>;
  const s3 = minioClient();

  beforeAll(async () => {
    key = await keyFile();
    await s3.send(new CreateBucketCommand({ Bucket: 'preflight' })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: 'pre', etcdLine: '3.6', withApiserver: false, storage: minioStorage('preflight') });
    worker = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1' })], { encryptionKeys: { k1: { file: key.path } } });
    await fillEtcd(cluster, 8, 512 * 1024); // a snapshot of a few MiB
    first = await runBackup(worker.client, worker.taskQueue, 'pre');
  });
  afterAll(async () => {
    await cluster?.controlPlane.exec(['bash', '-c', 'umount /var/lib/lifeboat 2>/dev/null; true']).catch(() => undefined);
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  it('refuses a work dir too small for the snapshot, naming the folder and the space needed, and changes nothing', async () => {
    const node = cluster.controlPlane;
    await node.exec(['bash', '-c', 'mkdir -p /var/lib/lifeboat && mount -t tmpfs -o size=1m lifeboat-small /var/lib/lifeboat']);
    const before = await nodeFingerprint(node);
    const err = await recover(worker.client, worker.taskQueue, { cluster: 'pre', approval: 'auto' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as Error & { type?: string };
    expect(cause.type).toBe('PreflightFailed');
    expect(cause.message).toMatch(
      /node "cp1": \/var\/lib\/lifeboat has \d+ MiB free; the restore needs at least \d+ MiB there \(the fetched snapshot\); free space first/,
    );
    expect(await nodeFingerprint(node)).toBe(before);
    await node.exec(['umount', '/var/lib/lifeboat']);
  });
  const failureOf = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: WorkflowFailedError) => e.cause as Error & { type?: string },
    );

  it('refuses a target whose etcd tools are of another minor version than the backup, naming both and the fix', async () => {
    // The node's etcdutl is 3.5 (set in the config, as an operator with an older tool on the path would have it);
    // every backup is of etcd 3.6.
    const etcd35 = cluster.binaries.etcd['3.5'];
    const other = await startTestWorker(
      [
        clusterSchema.parse({
          ...withBackup(cluster, { encryptionKey: 'k1' }),
          etcd: { ...cluster.config.etcd, etcdutl: `${etcd35}/etcdutl` },
        }),
      ],
      { encryptionKeys: { k1: { file: key.path } } },
    );
    try {
      const before = await nodeFingerprint(cluster.controlPlane);
      const named = await failureOf(
        recover(other.client, other.taskQueue, { cluster: 'pre', approval: 'auto', snapshot: first.snapshotKey }),
      );
      expect(named?.type).toBe('PreflightFailed');
      expect(named?.message).toMatch(
        /node "cp1" has etcdutl 3\.5\.\d+ but the backup is from etcd 3\.6: restore with the same etcd minor version \(install etcd 3\.6 tools, set etcd\.etcdutl in the config\)/,
      );
      // "latest" passes over every backup for that reason, and says so.
      const latest = await failureOf(recover(other.client, other.taskQueue, { cluster: 'pre', approval: 'auto' }));
      expect(latest?.type).toBe('MissingSnapshot');
      expect(latest?.message).toMatch(
        /no usable backup of cluster "pre" .*passed over: .*has etcdutl 3\.5\.\d+ but the backup is from etcd 3\.6/,
      );
      expect(await nodeFingerprint(cluster.controlPlane)).toBe(before);
    } finally {
      await other.stop();
    }
  });

  it('refuses a new-node recovery onto a node where a control plane listens, naming the ports', async () => {
    const before = await nodeFingerprint(cluster.controlPlane);
    const cause = await failureOf(
      recover(worker.client, worker.taskQueue, { cluster: 'pre', approval: 'auto', mode: 'new-node', target: 'cp1' }),
    );
    expect(cause?.type).toBe('PreflightFailed');
    expect(cause?.message).toMatch(
      /node "cp1" already listens on [^:]*:2379.*: a control plane runs there; use mode "in-place" or a clean node/,
    );
    expect(await nodeFingerprint(cluster.controlPlane)).toBe(before);
  });

  it('a backup configured with storage.objectLock refuses a bucket without Object Lock before taking a snapshot', async () => {
    const other = await startTestWorker(
      [withBackup(cluster, { encryptionKey: 'k1' }, { ...cluster.config.storage, objectLock: { mode: 'GOVERNANCE', days: 1 } })],
      { encryptionKeys: { k1: { file: key.path } } },
    );
    try {
      const objects = async () => (await listObjects(s3, 'preflight', '')).map((o) => o.key).sort();
      const before = await objects();
      const cause = await failureOf(runBackup(other.client, other.taskQueue, 'pre'));
      expect(cause?.type).toBe('ObjectLockUnavailable');
      expect(cause?.message).toMatch(
        /^cluster "pre", step plan: storage\.objectLock is set but bucket preflight has no Object Lock; create the bucket with Object Lock enabled/,
      );
      expect(await objects()).toEqual(before);
      expect((await cluster.controlPlane.exec(['bash', '-c', 'ls -A /var/lib/lifeboat/backups 2>/dev/null || true'])).trim()).toBe('');
    } finally {
      await other.stop();
    }
  });

  it('"latest" passes over a newer backup whose key id is not in the key ring, naming it; by key it is refused', async () => {
    // A newer backup encrypted with k2, which this worker's key ring does not hold (a key rotated on another worker).
    const k2 = await keyFile();
    const other = await startTestWorker([withBackup(cluster, { encryptionKey: 'k2' })], {
      encryptionKeys: { k1: { file: (await keyFile()).path }, k2: { file: k2.path } },
    });
    let newer;
    try {
      newer = await runBackup(other.client, other.taskQueue, 'pre');
    } finally {
      await other.stop();
    }
    const planned = await recover(worker.client, worker.taskQueue, { cluster: 'pre', dryRun: true });
    expect(planned.outcome).toBe('planned');
    expect(planned.plan.snapshot.encryptionKeyId).toBe('k1');
    expect(planned.plan.skipped).toEqual([
      { manifestKey: newer.manifestKey, reason: expect.stringMatching(/no key with id "k2" in the config/) },
    ]);
    const named = await recover(worker.client, worker.taskQueue, { cluster: 'pre', dryRun: true, snapshot: newer.snapshotKey }).then(
      () => undefined,
      (e: WorkflowFailedError) => e.cause as Error & { type?: string },
    );
    expect(named?.type).toBe('MissingSecret');
    expect(named?.message).toMatch(/no key with id "k2"/);
  });
  it('an edited manifest is passed over by "latest" and refused by key; an unsigned one only with a person\'s go-ahead', async () => {
    const signed = await runBackup(worker.client, worker.taskQueue, 'pre');
    const get = async () =>
      await (await s3.send(new GetObjectCommand({ Bucket: 'preflight', Key: signed.manifestKey }))).Body!.transformToString();
    const put = (body: string) => s3.send(new PutObjectCommand({ Bucket: 'preflight', Key: signed.manifestKey, Body: body }));
    const original = await get();
    const written = JSON.parse(original) as { etcd: { revision: string }; auth?: { keyId: string; tag: string } };
    expect(written.auth).toMatchObject({ algorithm: 'hmac-sha256', keyId: 'k1' });
    const untouched = await recover(worker.client, worker.taskQueue, { cluster: 'pre', dryRun: true, snapshot: signed.snapshotKey });
    expect(untouched.plan.snapshot.manifest).toBe('authentic');

    // Someone with write access to the bucket bumps the revision: the tag no longer matches.
    await put(JSON.stringify({ ...written, etcd: { ...written.etcd, revision: String(Number(written.etcd.revision) + 1) } }, null, 2));
    const latest = await recover(worker.client, worker.taskQueue, { cluster: 'pre', dryRun: true });
    expect(latest.plan.snapshot.manifestKey).not.toBe(signed.manifestKey);
    expect(latest.plan.snapshot.manifest).toBe('authentic');
    expect(latest.plan.skipped).toContainEqual({
      manifestKey: signed.manifestKey,
      reason: expect.stringMatching(/its manifest cannot be trusted: its tag does not match its content/),
    });
    const refuse = (input: Record<string, unknown>) =>
      recover(worker.client, worker.taskQueue, { cluster: 'pre', dryRun: true, snapshot: signed.snapshotKey, ...input }).then(
        () => undefined,
        (e: WorkflowFailedError) => e.cause as Error & { type?: string },
      );
    expect(await refuse({})).toMatchObject({ type: 'UnauthenticatedManifest', message: expect.stringMatching(/tag does not match/) });
    // Even a person cannot accept an edited manifest: only an unsigned one.
    expect(await refuse({ acceptUnsignedManifest: true })).toMatchObject({ type: 'UnauthenticatedManifest' });

    // Without its tag (a manifest from before manifests were signed, or one stripped of it): refused unless accepted.
    const { auth: _auth, ...unsigned } = written;
    await put(JSON.stringify(unsigned, null, 2));
    expect(await refuse({})).toMatchObject({
      type: 'UnauthenticatedManifest',
      message: expect.stringMatching(/is not signed.*acceptUnsignedManifest: true/),
    });
    const accepted = await recover(worker.client, worker.taskQueue, {
      cluster: 'pre',
      dryRun: true,
      snapshot: signed.snapshotKey,
      acceptUnsignedManifest: true,
    });
    expect(accepted.plan.snapshot).toMatchObject({ manifestKey: signed.manifestKey, manifest: 'unsigned' });
    await put(original);
  });
});
