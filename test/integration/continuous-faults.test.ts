import { temporal } from '@temporalio/proto';
import type { S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { chainIdOf, lastRevisionOfKey } from '../../src/continuous/segment';
import { listChainIds, listSegmentKeys } from '../../src/continuous/segment-store';
import type { ClusterConfig, StorageConfig } from '../../src/config/schema';
import { serverBinaries } from '../../src/devserver/binaries';
import { freePort, waitFor, type ManagedProcess } from '../../src/devserver/processes';
import { createEtcdClient, type EtcdClient } from '../../src/etcd/grpc/client';
import { status } from '../../src/etcd/grpc/status';
import { compareRevisions } from '../../src/etcd/revision';
import { captureWorkflowId } from '../../workflows/run-ids';
import { captureStateQuery, type CaptureState } from '../../workflows/capture-changes';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { etcdctlArgs } from '../../sandbox/control-plane';
import { killStaticPod } from '../../sandbox/disaster';
import { startMinio, type MinioServer } from '../../sandbox/minio';
import { testBed } from '../support/bed';
import { keyspaceAt } from '../support/pitr';
import { keyFile, withBackup } from '../support/backups';
import { chainThrough } from '../support/chains';
import { workerProcess } from '../support/worker-process';

/**
 * Continuous backups through the faults a capture meets in the field, one after the other while writes keep coming:
 * the store down for a minute, the SSH session to the node dropped, etcd restarted by its kubelet. After each, the
 * capture catches up by itself (the lag metric falls back to seconds); at the end the chain is whole, one chain (no
 * fault here is a gap), and every write etcd acknowledged is in it exactly once, at the revision etcd gave it. A MinIO
 * of this file's own, so stopping it disturbs no other test; the worker as users run it (its own process).
 */
const CLUSTER = 'cfaults';
const BUCKET = 'cfaults';

describe('continuous capture through faults (store down, SSH dropped, etcd restarted)', () => {
  let minio: MinioServer;
  let s3: S3Client;
  let storage: StorageConfig;
  let cluster: SandboxCluster;
  let key: { path: string; key: Buffer };
  let config: ClusterConfig;
  let worker: ManagedProcess;
  let connection: Connection;
  let client: Client;
  let metricsAddress: string;
  let chain: string;
  let etcd: EtcdClient;
  const capture = () => client.workflow.getHandle(captureWorkflowId(CLUSTER));
  const etcdctlLine = `etcdctl ${etcdctlArgs().join(' ')}`;
  const sh = (script: string) => cluster.controlPlane.exec(['bash', '-c', script]);

  /** The lag the worker reports for this cluster (seconds), undefined before its first report. */
  const lag = async (): Promise<number | undefined> => {
    const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
    const m = new RegExp(`lifeboat_continuous_lag_seconds\\{cluster="${CLUSTER}"\\} ([\\d.e+]+)`).exec(text);
    return m ? Number(m[1]) : undefined;
  };
  /** The capture's activity as Temporal sees it: its attempt (each fault that failed it adds one) and whether it runs. */
  const activity = async () => {
    const a = (await capture().describe()).raw.pendingActivities?.[0];
    return { attempt: a?.attempt ?? 0, running: a?.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED };
  };
  /** The newest revision a segment in the bucket holds (by its key: a listing, as a restore's plan starts). */
  const durableThrough = async () =>
    (await listSegmentKeys(s3, storage, CLUSTER, chain))
      .map((k) => lastRevisionOfKey(k)!)
      .reduce((a, b) => (compareRevisions(a, b) >= 0 ? a : b), '0');
  /** Before each fault: the capture runs (not waiting out a retry), so the fault meets it. */
  async function capturing(): Promise<number> {
    return waitFor('the capture to run', async () => ((a) => (a.running ? a.attempt : undefined))(await activity()), 90_000, 250);
  }
  /**
   * Seconds from a fault's end until everything etcd held then is durable in the bucket: the recovery point is back.
   * The fault must have been met first (the capture's activity failed and was tried again).
   */
  async function recoveredAfter(fault: string, before: number, endedAt = Date.now()): Promise<number> {
    await waitFor(`the capture to meet ${fault}`, async () => (await activity()).attempt > before, 90_000, 250);
    const revision = await waitFor(
      'etcd to answer',
      () =>
        status(etcd).then(
          (s) => s.revision,
          () => undefined,
        ),
      90_000,
      250,
    );
    await waitFor(
      `revision ${revision} to be durable after ${fault}`,
      async () => compareRevisions(await durableThrough(), revision) >= 0,
      90_000,
      250,
    );
    return Math.round((Date.now() - endedAt) / 100) / 10;
  }

  beforeAll(async () => {
    minio = await startMinio((await serverBinaries()).minio, await mkdtemp(join(tmpdir(), 'lifeboat-minio-cfaults-')));
    await minio.createBucket(BUCKET);
    s3 = minio.client();
    process.env.LIFEBOAT_CFAULTS_S3_KEY = minio.accessKeyId;
    process.env.LIFEBOAT_CFAULTS_S3_SECRET = minio.secretAccessKey;
    storage = {
      bucket: BUCKET,
      prefix: 'lifeboat',
      region: minio.region,
      endpoint: minio.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: { env: 'LIFEBOAT_CFAULTS_S3_KEY' }, secretAccessKey: { env: 'LIFEBOAT_CFAULTS_S3_SECRET' } },
    };
    key = await keyFile();
    cluster = await createSandboxCluster({ name: CLUSTER, etcdLine: '3.6', withApiserver: false, storage });
    config = withBackup(cluster, { encryptionKey: 'k1', compression: 'zstd', continuous: { segmentSeconds: 1 } }, storage);
    const pki = (f: string) => readFile(cluster.controlPlane.path(`/etc/kubernetes/pki/etcd/${f}`));
    etcd = createEtcdClient({
      endpoint: `${cluster.controlPlane.ip}:2379`,
      tls: { ca: await pki('ca.crt'), cert: await pki('healthcheck-client.crt'), key: await pki('healthcheck-client.key') },
    });
    metricsAddress = `127.0.0.1:${await freePort()}`;
    process.env.LIFEBOAT_METRICS_ADDRESS = metricsAddress;
    const w = await workerProcess(CLUSTER, config, key.path);
    worker = w.launch();
    connection = await Connection.connect({ address: testBed().temporalAddress });
    client = new Client({ connection });
    // A cluster has objects before anything is backed up (an empty etcd is refused as a backup).
    for (let i = 0; i < 5; i++) await sh(`${etcdctlLine} put /registry/namespaces/ns-${i} x >/dev/null`);
    await client.workflow.start('captureClusterChanges', {
      taskQueue: w.taskQueue,
      workflowId: captureWorkflowId(CLUSTER),
      args: [{ cluster: CLUSTER }],
    });
    // No full backup yet: the capture takes one, the chain's base.
    const started = await waitFor(
      'the capture to take its base backup',
      async () => {
        const s: CaptureState | undefined = await capture()
          .query(captureStateQuery)
          .catch(() => undefined);
        return s?.lastBreak?.backup;
      },
      180_000,
      1000,
    );
    chain = chainIdOf(started);
  }, 300_000);

  afterAll(async () => {
    await capture()
      ?.terminate('test over')
      .catch(() => undefined);
    await worker?.stop();
    delete process.env.LIFEBOAT_METRICS_ADDRESS;
    etcd?.close();
    await connection?.close();
    await cluster?.destroy();
    s3?.destroy();
    await minio?.stop();
  });

  it('catches up after each fault; every acknowledged write is in the one chain exactly once, at its revision', async () => {
    // A steady writer on the node (about 8 writes/s) until told to stop; it notes each write etcd acknowledged.
    const acked = '/tmp/cfaults-acked';
    const writer = sh(
      `rm -f ${acked} /tmp/cfaults-stop; i=0; while [ ! -f /tmp/cfaults-stop ]; do i=$((i+1)); ` +
        `${etcdctlLine} put /registry/configmaps/default/w-$i v$i >/dev/null 2>&1 && echo $i >> ${acked}; sleep 0.05; done`,
    );
    const recovered: Record<string, number> = {};
    await waitFor('the capture to be caught up', async () => ((await lag()) ?? Infinity) < 5, 90_000, 250);

    // The store down for 25 s (past two of the capture's 10 s retry ceilings): nothing durable meanwhile, and the lag
    // says so; the capture resumes by itself.
    let before = await capturing();
    await minio.stop();
    await new Promise((r) => setTimeout(r, 25_000));
    expect(await lag()).toBeGreaterThan(20);
    await minio.restart();
    recovered.store = await recoveredAfter('the store outage', before);

    // The SSH session (and its port forward to etcd) cut on the node's side: every sshd session process killed.
    before = await capturing();
    const sshdPid = (await readFile(join(cluster.controlPlane.dir, 'sshd.pid'), 'utf8')).trim();
    await sh(`pkill -KILL -P ${sshdPid}`);
    recovered.ssh = await recoveredAfter('the SSH drop', before);

    // etcd killed; its kubelet starts it again from its data dir: the same history, so the same chain goes on.
    before = await capturing();
    await killStaticPod(cluster.controlPlane, 'etcd');
    recovered.etcd = await recoveredAfter('the etcd restart', before);
    // Each fault costs seconds of recovery point, not the retry back-off's minute.
    for (const [fault, seconds] of Object.entries(recovered)) expect([fault, seconds < 30]).toEqual([fault, true]);

    await sh('touch /tmp/cfaults-stop');
    await writer;
    const through = (await status(etcd)).revision;
    const written = await chainThrough({ s3, storage, cluster: CLUSTER, chain, key: key.key }, through);
    // One chain: none of these faults lost a revision, so none started a new one.
    expect(await listChainIds(s3, storage, CLUSTER)).toEqual([chain]);
    const ackedWrites = (await sh(`cat ${acked}`))
      .trim()
      .split('\n')
      .map((i) => `/registry/configmaps/default/w-${i}`);
    expect(ackedWrites.length).toBeGreaterThan(300);
    const inChain = written.entries
      .flatMap((e) => e.segment.events)
      .map((e) => ({
        key: Buffer.from(e.key, 'base64').toString(),
        value: Buffer.from(e.value ?? '', 'base64').toString(),
        rev: e.modRevision,
      }))
      .filter((e) => e.key.startsWith('/registry/configmaps/default/w-'));
    // etcd's own record of the writes (some not acknowledged to the writer while etcd was killed may still be there).
    const live = (await keyspaceAt(etcd))
      .filter((k) => k.key.startsWith('/registry/configmaps/default/w-'))
      .sort((a, b) => compareRevisions(a.modRevision, b.modRevision));
    expect(new Set(live.map((k) => k.key))).toEqual(new Set([...ackedWrites, ...live.map((k) => k.key)]));
    // Each exactly once, in revision order, at the revision etcd gave it, with its value.
    expect(inChain.map((e) => [e.key, e.rev])).toEqual(live.map((k) => [k.key, k.modRevision]));
    expect(inChain.filter((e) => e.value !== `v${e.key.replace(/.*w-/, '')}`)).toEqual([]);
    console.log(`continuous faults: caught up ${JSON.stringify(recovered)} s after each fault; ${ackedWrites.length} writes acknowledged`);
  }, 600_000);
});
