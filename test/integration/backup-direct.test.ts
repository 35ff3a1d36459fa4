import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError, type ApplicationFailure } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { readManifest } from '../../src/backup/catalog';
import { readStoredObject } from '../../src/backup/read-object';
import { drillRestore } from '../../workflows';
import type { ClusterConfig } from '../../src/config/schema';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { etcdctlArgs } from '../../sandbox/control-plane';
import { minioClient, minioStorage } from '../support/bed';
import { directModeOf, keyFile, runBackup, withBackup } from '../support/backups';
import { drillReportOf } from '../support/drills';
import { startTestWorker, type RunningWorker } from '../support/worker';

const run = promisify(execFile);

/**
 * Direct mode: the worker reaches etcd itself (endpoints and client certificates on the worker) and takes the
 * snapshot with its own etcdctl; only the PKI/manifests archive still comes over SSH. etcd 3.5 here, so the 3.5
 * etcdctl/etcdutl pair is proven as well.
 */
describe('backup in direct mode (worker -> etcd 3.5 over TLS)', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let key: { path: string; key: Buffer };
  let workDir: string;
  let config: ClusterConfig;
  let drillScratch: string;
  const s3 = minioClient();

  beforeAll(async () => {
    key = await keyFile();
    await s3.send(new CreateBucketCommand({ Bucket: 'direct' })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: 'direct', etcdLine: '3.5', withApiserver: false, storage: minioStorage('direct') });
    for (let i = 0; i < 7; i++)
      await cluster.controlPlane.exec(['etcdctl', ...etcdctlArgs(), 'put', `/registry/configmaps/default/cm-${i}`, `v${i}`]);
    // The worker's own copy of a client certificate, as an operator would install it next to the worker.
    const direct = await directModeOf(cluster, '3.5');
    workDir = direct.workDir;
    const certs = dirname(direct.caFile);
    config = withBackup(cluster, { encryptionKey: 'k1', compression: 'none' });
    config = { ...config, etcd: { ...config.etcd, direct } };
    // A second cluster entry with a client key that etcd's CA never signed.
    const stranger = join(certs, 'stranger');
    await mkdir(stranger);
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(stranger, 'c.key'),
      '-out',
      join(stranger, 'c.crt'),
      '-subj',
      '/CN=stranger',
      '-days',
      '1',
    ]);
    const badCerts = {
      ...config,
      name: 'direct-badcert',
      etcd: { ...config.etcd, direct: { ...direct, certFile: join(stranger, 'c.crt'), keyFile: join(stranger, 'c.key') } },
    };
    const noBucket = { ...config, name: 'direct-nobucket', storage: { ...config.storage, bucket: 'no-such-bucket' } };
    const noEtcdctl = {
      ...config,
      name: 'direct-noetcdctl',
      etcd: { ...config.etcd, direct: { ...direct, etcdctl: '/opt/nowhere/etcdctl' } },
    };
    drillScratch = await mkdtemp(join(tmpdir(), 'lifeboat-direct-drill-'));
    worker = await startTestWorker([config, badCerts, noBucket, noEtcdctl], {
      encryptionKeys: { k1: { file: key.path } },
      drill: { scratchDir: drillScratch, etcd: { '3.5': cluster.binaries.etcd['3.5'] }, startTimeout: '90s' },
    });
  });
  afterAll(async () => {
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  it("streams etcd's snapshot to the bucket: the stored object is a snapshot etcdutl 3.5 restores with its hash checked, and nothing was written on the worker or the node", async () => {
    const result = await runBackup(worker.client, worker.taskQueue, 'direct');
    const manifest = await readManifest(s3, 'direct', result.manifestKey);
    expect(manifest.etcd.serverVersion).toMatch(/^3\.5\./);
    expect(manifest.resourceCounts).toMatchObject({ configmaps: 7 });
    expect(manifest.controlPlaneFiles?.key).toBeDefined(); // the PKI archive still came from the node
    const file = join(await mkdtemp(join(tmpdir(), 'lifeboat-direct-')), 'snapshot.db');
    await readStoredObject(s3, 'direct', manifest.snapshot, () => key.key, createWriteStream(file));
    const { stdout } = await run(join(cluster.binaries.etcd['3.5'], 'etcdutl'), ['snapshot', 'status', '-w', 'json', file]);
    // The revision pinned from etcd's Status is the one in the bytes; the size is the database's (the trailer aside).
    expect(JSON.parse(stdout)).toMatchObject({ revision: Number(manifest.etcd.revision), totalSize: manifest.etcd.totalSize });
    expect(manifest.snapshot.plainSize).toBe(manifest.etcd.totalSize + 32);
    // No file was read with `snapshot status`: its figures are not claimed.
    expect(manifest.etcd.hash).toBeUndefined();
    expect(manifest.etcd.totalKeys).toBeUndefined();
    expect(result.steps.map((s) => s.step)).not.toContain('upload');
    // etcd's SHA-256 trailer is kept: a restore without --skip-hash-check accepts it.
    await run(join(cluster.binaries.etcd['3.5'], 'etcdutl'), ['snapshot', 'restore', file, '--data-dir', join(file, '..', 'restored')]);
    // Nothing was staged: no run folder on the worker, and the node never held a snapshot.
    expect(await readdir(join(workDir, 'backups')).catch(() => [])).toEqual([]);
    expect(existsSync(cluster.controlPlane.path('/var/lib/lifeboat/backups'))).toBe(false);
  });

  it('a drill restores the 3.5 backup with etcdutl 3.5 and finds its keys; the archive of an etcd-only node is named for what it lacks', async () => {
    const err = await worker.client.workflow
      .execute(drillRestore, { taskQueue: worker.taskQueue, workflowId: `drill-direct-${Date.now()}`, args: [{ cluster: 'direct' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const details = ((err as WorkflowFailedError).cause as ApplicationFailure).details![0] as { manifestKey: string };
    const report = await drillReportOf(s3, worker, details.manifestKey);
    expect(report!.checks.join('\n')).toMatch(/etcdutl snapshot restore \(etcd 3\.5\)/);
    expect(report!.countedThrough).toBe('etcd');
    expect(report!.counts.matched).toContainEqual({ resource: 'configmaps', expected: 7, actual: 7 });
    expect(report!.counts.differed).toEqual([]);
    // This sandbox node runs etcd alone: its archive has no kube-apiserver manifest, and that is the only problem.
    expect(report!.problems).toEqual([
      expect.stringMatching(/^the control-plane archive lacks the manifests: manifests\/kube-apiserver\.yaml/),
    ]);
    expect(await readdir(drillScratch)).toEqual([]);
  });

  it('refuses a client certificate etcd does not trust, naming the direct-mode settings, without retrying', async () => {
    const started = Date.now();
    const err = await runBackup(worker.client, worker.taskQueue, 'direct-badcert').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const text = String((err as WorkflowFailedError).cause?.message);
    expect(text).toMatch(/step snapshot/);
    expect(text).toMatch(/etcd\.direct\.caFile\/certFile\/keyFile/);
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it.each([
    ['direct-nobucket', 'BucketMissing', /step plan: bucket s3:\/\/no-such-bucket.* does not exist; create it or fix storage\.bucket/],
    [
      'direct-noetcdctl',
      'DirectModeMisconfigured',
      /step plan: etcd\.direct\.etcdctl "\/opt\/nowhere\/etcdctl" is not an executable on the worker/,
    ],
  ])('%s: fails in the plan step with %s, naming the field, and writes nothing', async (name, type, message) => {
    const err = await runBackup(worker.client, worker.taskQueue, name).catch((e: unknown) => e);
    const failure = (err as WorkflowFailedError).cause as { type?: string; message: string };
    expect(failure.type).toBe(type);
    expect(failure.message).toMatch(message);
    expect(await readdir(join(workDir, 'backups')).catch(() => [])).toEqual([]);
  });
});
