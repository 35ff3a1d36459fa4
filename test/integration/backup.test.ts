import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { readManifest } from '../../src/backup/catalog';
import type { BackupManifest } from '../../src/backup/manifest';
import { BackupIntegrityError, readStoredObject } from '../../src/backup/read-object';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { scheduleIdOf, syncBackupSchedules } from '../../src/schedules/backup-schedules';
import { minioClient, minioStorage, testBed } from '../support/bed';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { historyText } from '../support/history';
import { startTestWorker, type RunningWorker } from '../support/worker';
import { workflowsPath } from '../../src/temporal/worker';
import type { BackupClusterResult } from '../../workflows/backup-cluster';

const run = promisify(execFile);
const BUCKET = 'backups-main';

describe('backup of a sandbox cluster (etcd 3.6 + kube-apiserver) to MinIO', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let key: { path: string; key: Buffer };
  let admin: KubeClient;
  let result: BackupClusterResult;
  let manifest: BackupManifest;
  let workflowId: string | undefined;
  const s3 = minioClient();

  beforeAll(async () => {
    key = await keyFile();
    const storage = minioStorage(BUCKET, 'team-a/etcd');
    cluster = await createSandboxCluster({ name: 'bk36', etcdLine: '3.6', withApiserver: true, storage });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    admin = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
    for (let i = 0; i < 5; i++) {
      await admin.create('/api/v1/namespaces/default/configmaps', { metadata: { name: `before-${i}` }, data: { i: String(i) } });
    }
    const config = withBackup(cluster, { encryptionKey: 'k1', compression: 'gzip' });
    worker = await startTestWorker([config, { ...withBackup(cluster, {}), name: 'nokey' }], { encryptionKeys: { k1: { file: key.path } } });

    // The way users run it: a Temporal Schedule, triggered now.
    await syncBackupSchedules(worker.client, worker.config);
    const schedule = worker.client.schedule.getHandle(scheduleIdOf('bk36'));
    await schedule.trigger();
    for (let i = 0; i < 100 && !workflowId; i++) {
      const action = (await schedule.describe()).info.recentActions[0];
      if (action) workflowId = action.action.workflow.workflowId;
      else await new Promise((r) => setTimeout(r, 200));
    }
    expect(workflowId).toMatch(/^backup-bk36-/);
    result = await worker.client.workflow.getHandle(workflowId!).result();
    manifest = await readManifest(s3, BUCKET, result.manifestKey);
  });
  afterAll(async () => {
    await worker?.client.schedule
      .getHandle(scheduleIdOf('bk36'))
      .delete()
      .catch(() => undefined);
    await worker?.client.schedule
      .getHandle(scheduleIdOf('nokey'))
      .delete()
      .catch(() => undefined);
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  it('names objects <prefix>/<cluster>/etcd/<UTC time>-rev<revision> and writes a manifest beside them', async () => {
    expect(result.snapshotKey).toMatch(new RegExp(`^team-a/etcd/bk36/etcd/\\d{8}T\\d{6}Z-rev${result.revision}\\.db\\.gz\\.enc$`));
    expect(result.controlPlaneFilesKey).toBe(result.snapshotKey.replace('.db.gz.enc', '.control-plane.tar.gz.enc'));
    expect(result.manifestKey).toBe(result.snapshotKey.replace('.db.gz.enc', '.manifest.json'));
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'team-a/etcd/bk36/' }));
    expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual(
      [result.controlPlaneFilesKey, result.manifestKey, result.snapshotKey].sort(),
    );
    expect(manifest).toMatchObject({ cluster: 'bk36', node: 'cp1', verified: true, kubernetesVersion: expect.stringMatching(/^v1\.34\./) });
    expect(manifest.etcd.serverVersion).toMatch(/^3\.6\./);
    expect(manifest.snapshot.encryption).toEqual({ algorithm: 'aes-256-gcm-stream', keyId: 'k1' });
    expect(result.confirmedBy.every((c) => c.endsWith(': crc32'))).toBe(true); // the store reported our checksum back
    // upload and control-plane files run side by side, so their order varies.
    expect(result.steps.map((s) => s.step).sort()).toEqual([
      'clean node',
      'confirm',
      'control-plane files',
      'manifest',
      'plan',
      'retention',
      'snapshot',
      'upload',
      'verify',
    ]);
  });

  it('stores a snapshot that, decrypted with the key and decompressed, matches the manifest and etcdutl accepts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-restored-'));
    const file = join(dir, 'snapshot.db');
    const read = await readStoredObject(
      s3,
      BUCKET,
      manifest.snapshot,
      (id) => (id === 'k1' ? key.key : undefined),
      createWriteStream(file),
    );
    expect(read.plainSha256).toBe(manifest.snapshot.plainSha256);
    const bytes = await readFile(file);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(manifest.snapshot.plainSha256);
    expect(bytes.length).toBe(manifest.snapshot.plainSize);
    const etcdutl = join(cluster.binaries.etcd['3.6'], 'etcdutl');
    const status = JSON.parse((await run(etcdutl, ['snapshot', 'status', '-w', 'json', file])).stdout) as {
      revision: number;
      hash: number;
      totalKey: number;
    };
    expect(status).toMatchObject({ revision: Number(manifest.etcd.revision), hash: manifest.etcd.hash, totalKey: manifest.etcd.totalKeys });
    // Stored bytes are ciphertext: the etcd bbolt magic must not be visible.
    const stored = Buffer.from(
      await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: manifest.snapshot.key }))).Body!.transformToByteArray(),
    );
    expect(stored.subarray(0, 7).toString()).toBe('LBENC1\n');
    expect(createHash('sha256').update(stored).digest('hex')).toBe(manifest.snapshot.storedSha256);
  });

  it('records object counts per resource at the snapshot revision', async () => {
    const configmaps = await admin.list('/api/v1/configmaps');
    expect(manifest.resourceCounts.configmaps).toBe(configmaps.length);
    expect(manifest.resourceCounts.namespaces).toBeGreaterThanOrEqual(4);
  });

  it('keeps the PKI, manifests and kubeconfigs in an encrypted archive', async () => {
    expect(manifest.controlPlaneFiles?.files).toEqual(
      expect.arrayContaining([
        'pki/ca.key',
        'pki/sa.key',
        'pki/etcd/ca.key',
        'manifests/etcd.yaml',
        'manifests/kube-apiserver.yaml',
        'admin.conf',
        'super-admin.conf',
      ]),
    );
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-archive-'));
    const tar = join(dir, 'files.tar');
    await readStoredObject(s3, BUCKET, manifest.controlPlaneFiles!, () => key.key, createWriteStream(tar));
    await run('tar', ['-xf', tar, '-C', dir]);
    expect(await readFile(join(dir, 'pki/ca.key'), 'utf8')).toBe(
      await readFile(cluster.controlPlane.path('/etc/kubernetes/pki/ca.key'), 'utf8'),
    );
  });

  it('removes its snapshot copy from the node once the bucket has it', async () => {
    const left = await cluster.controlPlane.exec(['find', '/var/lib/lifeboat/backups', '-type', 'f']).catch(() => '');
    expect(left.trim()).toBe('');
  });

  it('detects a tampered object (one byte flipped)', async () => {
    const original = Buffer.from(
      await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: manifest.snapshot.key }))).Body!.transformToByteArray(),
    );
    const tampered = Buffer.from(original);
    tampered[Math.floor(tampered.length / 2)] ^= 0x01;
    const tamperedKey = `${manifest.snapshot.key}.tampered-copy`;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: tamperedKey, Body: tampered }));
    const sink = createWriteStream(join(await mkdtemp(join(tmpdir(), 'lifeboat-t-')), 'x'));
    await expect(readStoredObject(s3, BUCKET, { ...manifest.snapshot, key: tamperedKey }, () => key.key, sink)).rejects.toBeInstanceOf(
      BackupIntegrityError,
    );
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: tamperedKey }));
  });

  it('keeps key material, S3 secrets and PKI bytes out of the workflow history', async () => {
    const history = await worker.client.workflow.getHandle(workflowId!).fetchHistory();
    const text = historyText(history);
    expect(text).toContain('bk36'); // the search does see payloads
    const caKey = await readFile(cluster.controlPlane.path('/etc/kubernetes/pki/ca.key'), 'utf8');
    const forbidden = [
      key.key.toString('base64'),
      key.key.toString('hex'),
      testBed().minio.secretAccessKey,
      'PRIVATE KEY',
      caKey.split('\n')[1],
    ];
    for (const secret of forbidden) expect(text).not.toContain(secret);
  });

  it('its history replays against the current workflow code without non-determinism (verify alongside the upload)', async () => {
    const history = await worker.client.workflow.getHandle(workflowId!).fetchHistory();
    expect(historyText(history)).toContain('verify-alongside-upload'); // the patched path is the one recorded
    await expect(Worker.runReplayHistory({ workflowsPath }, history, workflowId)).resolves.toBeUndefined();
  });

  it('fails fast, naming the fix, when no encryption key is configured; nothing is written', async () => {
    const err = await runBackup(worker.client, worker.taskQueue, 'nokey').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const failure = (err as WorkflowFailedError).cause as { type?: string; message: string };
    expect(failure.type).toBe('MissingEncryptionKey');
    expect(failure.message).toMatch(/cluster "nokey", step plan: no encryption key set.*encryptionKey/);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'team-a/etcd/nokey/' }));
    expect(listed.KeyCount ?? 0).toBe(0);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });
});
