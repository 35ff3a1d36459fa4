import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { fillEtcd } from '../../sandbox/fill';
import { etcdctlArgs } from '../../sandbox/control-plane';
import { wipeControlPlane } from '../../sandbox/disaster';
import * as directEtcd from '../../src/backup/direct-etcd';
import type { ClusterConfig } from '../../src/config/schema';
import { waitFor } from '../../src/devserver/processes';
import type { EtcdClient } from '../../src/etcd/grpc/client';
import type { SnapshotResponse } from '../../src/etcd/grpc/proto';
import { backupCluster } from '../../workflows';
import { directModeOf, keyFile, runBackup, withBackup } from '../support/backups';
import { failureOf } from '../support/failures';
import { minioClient, minioStorage } from '../support/bed';
import { startTestWorker, type RunningWorker } from '../support/worker';

const BUCKET = 'streamfaults';

/**
 * Direct mode streams etcd's snapshot into a multipart upload as it arrives: a stream that breaks, is cut short or
 * altered must leave nothing in the bucket (no object, no manifest, no unfinished multipart upload), and the step's
 * retry then takes a whole snapshot. One sandbox etcd with ~120 MiB of random values (the stream lasts seconds), real
 * MinIO, a real worker.
 */
describe('a streamed snapshot that breaks, is cut short or altered stores nothing', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  const s3: S3Client = minioClient();
  /** How the next snapshot stream is damaged on its way from etcd to the verifier; undefined: untouched. */
  let damage: ((messages: SnapshotStreamDamage) => void) | undefined;
  /** Resolved when a backup's step asks for its second etcd client: its first attempt has failed. */
  let secondAttempt: { reached: () => void; release: Promise<void> } | undefined;
  /** etcd clients the worker opened for the current test's backup. */
  let clients = 0;
  beforeEach(() => (clients = 0));

  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: 'sfaults', etcdLine: '3.6', withApiserver: false, storage: minioStorage(BUCKET) });
    await fillEtcd(cluster, 120, 1024 * 1024);
    const key = await keyFile();
    let config: ClusterConfig = withBackup(cluster, { encryptionKey: 'k1' });
    config = {
      ...config,
      etcd: {
        ...config.etcd,
        direct: await directModeOf(cluster, '3.6'),
      },
    };
    // The worker's real client to the sandbox's etcd, with its snapshot stream passed through `damage` when armed.
    const real = directEtcd.directEtcdClient;
    jest.spyOn(directEtcd, 'directEtcdClient').mockImplementation(async (d) => {
      const client = await real(d);
      clients += 1;
      if (clients === 2 && secondAttempt) {
        secondAttempt.reached();
        await secondAttempt.release;
      }
      const armed = damage;
      damage = undefined;
      return armed ? damaged(client, armed) : client;
    });
    worker = await startTestWorker([config], { encryptionKeys: { k1: { file: key.path } } });
  }, 600_000);
  afterAll(async () => {
    jest.restoreAllMocks();
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  const unfinishedUploads = async () => (await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? [];
  const objects = async () =>
    ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'lifeboat/sfaults/' }))).Contents ?? []).map((o) => o.Key!);

  /** The streaming step's attempts, from the run's history: the last one's number and the failure of the one before. */
  async function streamAttempts(workflowId: string): Promise<{ attempt: number; lastFailure?: string }> {
    const history = await worker.client.workflow.getHandle(workflowId).fetchHistory();
    const scheduled = history.events!.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'streamSnapshot');
    const started = history.events!.find(
      (e) =>
        e.activityTaskStartedEventAttributes &&
        String(e.activityTaskStartedEventAttributes.scheduledEventId) === String(scheduled!.eventId),
    )!.activityTaskStartedEventAttributes!;
    return { attempt: started.attempt!, lastFailure: started.lastFailure?.message ?? undefined };
  }

  /**
   * Runs a backup whose first attempt meets `fault` while its multipart upload is under way; checks the bucket once
   * that attempt has failed (before the retry may start), then lets the retry run and returns what it recorded.
   */
  async function backupThroughFault(name: string, fault: () => Promise<void>) {
    const before = await objects();
    let reached!: () => void;
    const failedOnce = new Promise<void>((r) => (reached = r));
    let release!: () => void;
    secondAttempt = { reached, release: new Promise<void>((r) => (release = r)) };
    const workflowId = `sfaults-${name}-${Date.now()}`;
    const run = worker.client.workflow.execute(backupCluster, { taskQueue: worker.taskQueue, workflowId, args: [{ cluster: 'sfaults' }] });
    run.catch(() => undefined);
    try {
      await waitFor('a multipart upload in progress', async () => (await unfinishedUploads()).length > 0, 120_000, 50);
      await fault();
      await Promise.race([failedOnce, run.then(() => Promise.reject(new Error('the backup ended without a second attempt')))]);
      // The failed attempt aborted its own upload: no parts left, and no object or manifest of it.
      expect(await unfinishedUploads()).toEqual([]);
      expect(await objects()).toEqual(before);
    } finally {
      release();
      secondAttempt = undefined;
    }
    const result = await run;
    const attempts = await streamAttempts(workflowId);
    expect(await unfinishedUploads()).toEqual([]);
    // The retry stored one whole backup: its snapshot, archive and manifest, nothing else.
    expect((await objects()).filter((k) => !before.includes(k)).sort()).toEqual(
      [result.snapshotKey, result.controlPlaneFilesKey, result.manifestKey].sort(),
    );
    return attempts;
  }

  it('etcd killed mid-stream (the kubelet restarts it): the upload is aborted, the retry stores a whole snapshot', async () => {
    const attempts = await backupThroughFault('killed', async () => {
      const pids = (await cluster.controlPlane.pods()).flatMap((p) => (p.name.startsWith('etcd') ? p.containers.map((c) => c.pid) : []));
      await cluster.controlPlane.exec(['kill', '-9', ...pids.filter(Boolean).map(String)]);
    });
    expect(attempts.attempt).toBeGreaterThan(1);
    expect(attempts.lastFailure).toMatch(/etcd snapshot from .* (broke after \d+ bytes|the stream ended after \d+ of \d+ bytes)/);
  }, 300_000);

  it('a stream with one byte altered fails on its SHA-256: nothing stored, the multipart aborted', async () => {
    damage = (d) => d.alterLastDataMessage();
    const attempts = await backupThroughFault('altered', async () => undefined);
    expect(attempts.lastFailure).toMatch(/SHA-256 mismatch/);
  }, 300_000);

  it('a stream that ends cleanly two thirds through fails on its size: nothing stored, the multipart aborted', async () => {
    damage = (d) => d.endAt(2 / 3);
    const attempts = await backupThroughFault('truncated', async () => undefined);
    expect(attempts.lastFailure).toMatch(/the stream ended after \d+ of \d+ bytes/);
  }, 300_000);

  /**
   * SSH mode reads etcdctl's file on the node as it grows (src/backup/follow-snapshot.ts): a save that dies or a
   * session that drops mid-stream aborts the upload, and the retry stores one whole backup. Run before the wipe below.
   */
  describe('SSH mode, uploaded while etcdctl saves it', () => {
    let sshWorker: RunningWorker;
    beforeAll(async () => {
      sshWorker = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1', streamWhileSaving: true })], {
        encryptionKeys: { k1: { file: (await keyFile()).path } },
      });
    });
    afterAll(() => sshWorker?.stop());

    /**
     * `fault` runs once the upload is under way (`uploading`). `saving`: the watcher on the node SIGKILLs the processes
     * `killOnSave` names mid-stream, itself, and at the one moment that tests the stream: after the node's script
     * pinned the snapshot's revision (a failure before that only makes the script start the save again, by design).
     * etcd sends 120 MiB in well under a second here, less than the script's second `endpoint status` takes under
     * load, so the watcher holds the receiving etcdctl (SIGSTOP) once its file has bytes, waits for the script's
     * `tail --pid=<etcdctl>` (the revision pinned, the upload under way), kills, and lets etcdctl go on to a broken stream.
     */
    async function sshBackupThroughFault(
      name: string,
      when: 'uploading' | 'saving',
      fault: () => Promise<void>,
      killOnSave: string[] = [],
    ) {
      const before = await objects();
      const workflowId = `sfaults-ssh-${name}-${Date.now()}`;
      const saving =
        when === 'saving'
          ? cluster.controlPlane.exec([
              'sh',
              '-c',
              [
                'dir=$1; shift',
                'until f=$(ls "$dir"/backups/*/snapshot.db.part 2>/dev/null) && [ -s "$f" ]; do sleep 0.002; done',
                '[ $# -eq 0 ] && exit 0',
                'save=$(cat "${f%/*}/save.pid")',
                'kill -STOP "$save"',
                'until pgrep -f -- "--pid=$save" >/dev/null; do sleep 0.01; done',
                'kill -9 "$@"',
                'kill -CONT "$save"',
              ].join('\n'),
              'sh',
              cluster.config.paths.workDir,
              ...killOnSave,
            ])
          : undefined;
      const run = sshWorker.client.workflow.execute(backupCluster, {
        taskQueue: sshWorker.taskQueue,
        workflowId,
        args: [{ cluster: 'sfaults' }],
      });
      run.catch(() => undefined);
      if (saving) await saving;
      else await waitFor('a multipart upload in progress', async () => (await unfinishedUploads()).length > 0, 120_000, 50);
      await fault();
      const result = await run;
      expect(await unfinishedUploads()).toEqual([]);
      expect((await objects()).filter((k) => !before.includes(k)).sort()).toEqual(
        [result.snapshotKey, result.controlPlaneFilesKey, result.manifestKey].sort(),
      );
      const history = await sshWorker.client.workflow.getHandle(workflowId).fetchHistory();
      const scheduled = history.events!.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'streamWhileSaving')!;
      const started = history.events!.find(
        (e) =>
          e.activityTaskStartedEventAttributes &&
          String(e.activityTaskStartedEventAttributes.scheduledEventId) === String(scheduled.eventId),
      )!.activityTaskStartedEventAttributes!;
      // The failed attempt ended too (it does not wait, open, for the worker to stop: a draining worker would).
      await waitFor('no activity left running on the worker', async () => sshWorker.inFlightActivities() === 0, 10_000, 100);
      return { result, attempt: started.attempt!, lastFailure: started.lastFailure?.message ?? '' };
    }

    it('etcd killed mid-stream: the save fails, the upload is aborted, the retry stores a whole snapshot', async () => {
      const pids = (await cluster.controlPlane.pods()).flatMap((p) => (p.name.startsWith('etcd') ? p.containers.map((c) => c.pid) : []));
      expect(pids.filter(Boolean).length).toBeGreaterThan(0);
      const { attempt, lastFailure } = await sshBackupThroughFault(
        'killed',
        'saving',
        async () => undefined,
        pids.filter(Boolean).map(String),
      );
      expect(attempt).toBeGreaterThan(1);
      // Mid-stream etcdctl fails at once; before its first byte the node's script stops it within 15 s (not etcdctl's
      // 10-minute command timeout). Either way the attempt fails in its own words, not on missed heartbeats.
      expect(lastFailure).toMatch(/etcdctl snapshot save on node "cp1" failed: exited \d+: /);
    }, 300_000);

    it("the SSH session dropped mid-stream: the upload is aborted, the retry uploads the save's whole file", async () => {
      const { result, attempt, lastFailure } = await sshBackupThroughFault('dropped', 'uploading', async () => {
        const sshd = (await readFile(join(cluster.controlPlane.dir, 'sshd.pid'), 'utf8')).trim();
        await promisify(execFile)('pkill', ['-KILL', '-P', sshd]);
      });
      expect(attempt).toBeGreaterThan(1);
      expect(lastFailure).not.toBe('');
      // The retry stopped the save its predecessor left running, or uploaded its file if it had finished.
      expect(result.savedFirst ?? 'streamed').toMatch(/streamed|an earlier attempt of this run left the whole file/);
    }, 300_000);
  });

  it('etcd wiped: the snapshot is below the floor, the stream stops and nothing is stored', async () => {
    const floor = await runBackup(worker.client, worker.taskQueue, 'sfaults');
    await wipeControlPlane(cluster.controlPlane);
    await waitFor(
      'etcd back, empty, taking writes',
      async () =>
        !!(await cluster.controlPlane
          .exec(['etcdctl', ...etcdctlArgs(), 'put', '/registry/configmaps/default/after', 'v'])
          .catch(() => '')),
      120_000,
      500,
    );
    const before = await objects();
    const failure = await failureOf(runBackup(worker.client, worker.taskQueue, 'sfaults'));
    expect(failure.type).toBe('RevisionRegression');
    expect(failure.message).toMatch(new RegExp(`step snapshot: the snapshot's etcd revision \\d+ is below ${floor.revision}`));
    expect(await objects()).toEqual(before);
    expect(await unfinishedUploads()).toEqual([]);
  }, 300_000);
});

interface SnapshotStreamDamage {
  /** Flips a byte of the database's last message (remaining_bytes 0, before the SHA-256's): caught only by the hash. */
  alterLastDataMessage(): void;
  /** Ends the stream without an error once this share of the database has passed (etcd's call is cancelled). */
  endAt(share: number): void;
}

/** `client` with its snapshot stream's messages passed through a transform that damages them as `arm` says. */
function damaged(client: EtcdClient, arm: (d: SnapshotStreamDamage) => void): EtcdClient {
  let alterLast = false;
  let endShare: number | undefined;
  arm({ alterLastDataMessage: () => (alterLast = true), endAt: (share) => (endShare = share) });
  const maintenance = Object.create(client.maintenance) as EtcdClient['maintenance'];
  maintenance.Snapshot = (request, options) => {
    const call = client.maintenance.Snapshot(request, options);
    let total: number | undefined;
    let seen = 0;
    let ended = false;
    const messages = new Transform({
      objectMode: true,
      transform(msg: SnapshotResponse, _enc, cb: TransformCallback) {
        if (ended) return cb();
        total ??= Number(msg.remainingBytes) + msg.blob.length;
        const data = seen < total; // the message after the database is its SHA-256
        if (data) seen += msg.blob.length;
        if (endShare !== undefined && seen >= total * endShare) {
          ended = true;
          call.unpipe(messages);
          call.cancel();
          cb();
          this.push(null);
          return;
        }
        if (alterLast && data && seen === total) {
          const blob = Buffer.from(msg.blob);
          blob[blob.length >> 1] ^= 0xff;
          return cb(null, { ...msg, blob });
        }
        cb(null, msg);
      },
    });
    call.on('error', (err) => {
      if (!ended) messages.destroy(err);
    });
    call.pipe(messages);
    return Object.assign(messages, { cancel: () => call.cancel() }) as unknown as ReturnType<EtcdClient['maintenance']['Snapshot']>;
  };
  return { ...client, maintenance };
}
