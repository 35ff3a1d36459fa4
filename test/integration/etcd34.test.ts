import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readManifest } from '../../src/backup/catalog';
import { drillRestore } from '../../workflows';
import { readStoredObject } from '../../src/backup/read-object';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { minioClient, minioStorage } from '../support/bed';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { drillConfigFor } from '../support/drills';
import { recover } from '../support/recovery';
import { startTestWorker, type RunningWorker } from '../support/worker';

/** Debian's etcd 3.4: snapshot status and restore go through etcdctl (there is no etcdutl). */
describe('etcd 3.4 (Debian etcd-server/etcd-client): backup and restore with etcdctl', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let key: { path: string; key: Buffer };
  let api: KubeClient;
  let scratchDir: string;
  const s3 = minioClient();

  beforeAll(async () => {
    key = await keyFile();
    await s3.send(new CreateBucketCommand({ Bucket: 'etcd34' })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: 'e34', etcdLine: '3.4', withApiserver: true, storage: minioStorage('etcd34') });
    api = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
    const drill = await drillConfigFor('e34', ['3.4'], '90s');
    scratchDir = drill.scratchDir;
    worker = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1', compression: 'gzip' })], {
      encryptionKeys: { k1: { file: key.path } },
      drill,
    });
  });
  afterAll(async () => {
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  it('backs up, and etcdctl 3.4 accepts the decrypted snapshot', async () => {
    await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'before-backup' } });
    const result = await runBackup(worker.client, worker.taskQueue, 'e34');
    const manifest = await readManifest(s3, 'etcd34', result.manifestKey);
    expect(manifest.etcd.serverVersion).toMatch(/^3\.4\./);
    const file = join(await mkdtemp(join(tmpdir(), 'lifeboat-e34-')), 'snapshot.db');
    await readStoredObject(s3, 'etcd34', manifest.snapshot, () => key.key, createWriteStream(file));
    const { stdout } = await promisify(execFile)('/usr/bin/etcdctl', ['snapshot', 'status', '-w', 'json', file], {
      env: { ...process.env, ETCDCTL_API: '3' },
    });
    expect(JSON.parse(stdout)).toMatchObject({
      revision: Number(manifest.etcd.revision),
      totalKey: manifest.etcd.totalKeys,
      hash: manifest.etcd.hash,
    });
  });

  it('drills the 3.4 backup: etcdctl snapshot restore, a throwaway etcd 3.4 and kube-apiserver, counts through the API', async () => {
    const result = await worker.client.workflow.execute(drillRestore, {
      taskQueue: worker.taskQueue,
      workflowId: `drill-e34-${Date.now()}`,
      args: [{ cluster: 'e34' }],
    });
    expect(result.result).toBe('passed');
    expect(result.countedThrough).toBe('api');
    expect(result.checks.join('\n')).toMatch(/etcdctl snapshot restore \(etcd 3\.4\)/);
    expect(result.counts.differed).toEqual([]);
    expect(result.counts.matched.find((c) => c.resource === 'configmaps')?.actual).toBeGreaterThan(0);
    expect(await readdir(scratchDir)).toEqual([]);
  });

  it('restores in place with etcdctl snapshot restore', async () => {
    await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'after-backup' } });
    const result = await recover(worker.client, worker.taskQueue, { cluster: 'e34', approval: 'auto', controlPlaneTimeoutSeconds: 120 });
    expect(result.outcome).toBe('restored');
    expect(result.plan.tool).toMatchObject({ kind: 'etcdctl', bumpRevision: false, version: expect.stringMatching(/^3\.4\./) });
    const names = (await api.list('/api/v1/namespaces/default/configmaps')).map((c) => c.metadata.name);
    expect(names).toContain('before-backup');
    expect(names).not.toContain('after-backup');
  });
});
