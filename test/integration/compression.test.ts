import { CreateBucketCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { decryptChunks } from '../../src/backup/encryption';
import { readManifest } from '../../src/backup/catalog';
import type { Compression } from '../../src/backup/object-keys';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { minioClient, minioStorage } from '../support/bed';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { drillConfigFor } from '../support/drills';
import { startTestWorker, type RunningWorker } from '../support/worker';
import { drillRestore } from '../../workflows';
import type { BackupClusterResult } from '../../workflows/backup-cluster';

const BUCKET = 'codecs';

/**
 * Each codec's backup restores: one sandbox cluster backed up under three cluster names (zstd, gzip, none; all
 * encrypted), and once more with zstd hidden on the node (the worker compresses instead), each then restored by a
 * real drill (etcd and kube-apiserver from the backup, objects counted through the API).
 */
describe('backup compression: on the node before SSH, each codec restores', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let key: { path: string; key: Buffer };
  const s3 = minioClient();
  const names: Record<Compression, string> = { zstd: 'cmp-zstd', gzip: 'cmp-gzip', none: 'cmp-none' };
  const backups: Record<string, BackupClusterResult> = {};

  /** The first bytes of a backup object as compressed (decrypted, not decompressed): its codec's own header. */
  const storedHead = async (objectKey: string): Promise<Buffer> => {
    const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: objectKey }));
    const body = res.Body as Readable;
    try {
      for await (const chunk of decryptChunks(() => key.key)(body)) return chunk.subarray(0, 16);
      throw new Error(`${objectKey} is empty`);
    } finally {
      body.destroy();
    }
  };

  const drill = (client: Client, taskQueue: string, clusterName: string, snapshot: string) =>
    client.workflow.execute(drillRestore, {
      taskQueue,
      workflowId: `drill-${clusterName}-${Date.now()}`,
      args: [{ cluster: clusterName, snapshot }],
    });

  beforeAll(async () => {
    key = await keyFile();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: 'cmp', etcdLine: '3.6', withApiserver: true, storage: minioStorage(BUCKET) });
    const api = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
    // Config-file text, the kind of value a cluster is full of: compressible, as real snapshots are.
    const text = Array.from({ length: 400 }, (_, i) => `setting.${i % 37}.name = value-${i}\n`).join('');
    for (let i = 0; i < 40; i++)
      await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: `cfg-${i}` }, data: { 'app.conf': text } });
    const config = (codec: Compression) => ({
      ...withBackup(cluster, { encryptionKey: 'k1', ...(codec === 'zstd' ? {} : { compression: codec }) }),
      name: names[codec],
    });
    worker = await startTestWorker([config('zstd'), config('gzip'), config('none')], {
      encryptionKeys: { k1: { file: key.path } },
      drill: await drillConfigFor('codec', ['3.6']),
    });
  });
  afterAll(async () => {
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  it('zstd is the default, and the node compresses: its zstd frame (with the CLI checksum) is what the bucket holds', async () => {
    const r = (backups.zstd = await runBackup(worker.client, worker.taskQueue, names.zstd));
    expect(r).toMatchObject({ compression: 'zstd', compressedOn: 'node' });
    expect(r.compressionNote).toBeUndefined();
    expect(r.snapshotKey).toMatch(/\.db\.zst\.enc$/);
    expect(r.storedBytes).toBeLessThan(r.plainBytes / 2);
    const head = await storedHead(r.snapshotKey);
    expect(head.readUInt32LE(0)).toBe(0xfd2fb528); // zstd frame magic
    // Frame header descriptor: the zstd CLI sets the content-checksum flag (bit 2) and, reading a file, the content
    // size; the worker's streaming compressor sets neither. So this frame was made on the node.
    expect(head[4] & 0x04).toBe(0x04);
    const manifest = await readManifest(s3, worker.config.clusters[0].storage.bucket, r.manifestKey);
    expect(manifest.snapshot).toMatchObject({ compression: 'zstd', plainSize: r.plainBytes, storedSize: r.storedBytes });
  });

  it('gzip: gzip -1 on the node (its header names the file, which zlib on the worker never does)', async () => {
    const r = (backups.gzip = await runBackup(worker.client, worker.taskQueue, names.gzip));
    expect(r).toMatchObject({ compression: 'gzip', compressedOn: 'node' });
    expect(r.snapshotKey).toMatch(/\.db\.gz\.enc$/);
    expect(r.storedBytes).toBeLessThan(r.plainBytes / 2);
    const head = await storedHead(r.snapshotKey);
    expect([head[0], head[1]]).toEqual([0x1f, 0x8b]);
    expect(head[3] & 0x08).toBe(0x08); // FNAME: `gzip -c file` on the node
  });

  it('none: the snapshot as it is', async () => {
    const r = (backups.none = await runBackup(worker.client, worker.taskQueue, names.none));
    expect(r.compression).toBe('none');
    expect(r.compressedOn).toBeUndefined();
    expect(r.snapshotKey).toMatch(/\.db\.enc$/);
    expect(r.storedBytes).toBeGreaterThan(r.plainBytes);
    expect((await storedHead(r.snapshotKey)).readUInt32LE(0)).not.toBe(0xfd2fb528);
  });

  it('a node where zstd does not run: the plan says so, the worker compresses, the backup is the same format', async () => {
    // The node's own mount namespace: an empty, non-executable file over its zstd, so only this node loses it.
    const hidden = join(cluster.controlPlane.dir, 'no-zstd');
    await writeFile(hidden, '', { mode: 0o644 });
    await cluster.controlPlane.exec(['mount', '--bind', hidden, '/usr/bin/zstd']);
    try {
      const r = (backups.fallback = await runBackup(worker.client, worker.taskQueue, names.zstd));
      expect(r).toMatchObject({ compression: 'zstd', compressedOn: 'worker' });
      expect(r.compressionNote).toMatch(/zstd does not run on node "\S+" \(.*\): zstd on the worker instead/);
      expect(r.storedBytes).toBeLessThan(r.plainBytes / 2);
      const head = await storedHead(r.snapshotKey);
      expect(head.readUInt32LE(0)).toBe(0xfd2fb528);
      expect(head[4] & 0x04).toBe(0); // the worker's frame: no content checksum
    } finally {
      await cluster.controlPlane.exec(['umount', '/usr/bin/zstd']);
    }
  });

  it.each(['zstd', 'gzip', 'none', 'fallback'])('the %s backup restores: a drill brings it up and counts its objects', async (which) => {
    const b = backups[which];
    expect(b).toBeDefined();
    const clusterName = which === 'fallback' ? names.zstd : names[which as Compression];
    const result = await drill(worker.client, worker.taskQueue, clusterName, b.snapshotKey);
    expect(result).toMatchObject({ result: 'passed', countedThrough: 'api' });
    expect(result.counts.differed).toEqual([]);
    const matched = Object.fromEntries(result.counts.matched.map((c) => [c.resource, c.actual]));
    expect(matched.configmaps).toBe(b.resourceCounts.configmaps);
    expect(matched.configmaps).toBeGreaterThanOrEqual(40);
  });
});
