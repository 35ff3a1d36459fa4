import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listObjects, readManifest } from '../../src/backup/catalog';
import { serverBinaries } from '../../src/devserver/binaries';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { etcdctlArgs } from '../../sandbox/control-plane';
import { minioClient, minioStorage } from '../support/bed';
import { keyFile, withBackup } from '../support/backups';
import { cliConfigFile, runCli } from '../support/cli';
import { recover } from '../support/recovery';
import { startTestWorker, type RunningWorker } from '../support/worker';
import { drillRestore, importBackup } from '../../workflows';
import type { ImportBackupInput, ImportBackupResult } from '../../workflows/import-backup';
import { failureOf } from '../support/failures';

const BUCKET = 'imports';
const configMap = (name: string) => ({ metadata: { name }, data: { name } });

const importIt = (client: Client, taskQueue: string, input: ImportBackupInput) =>
  client.workflow.execute(importBackup, { taskQueue, workflowId: `import-${input.cluster}-${Date.now()}`, args: [input] });

describe('backup import: a plain `etcdctl snapshot save` from the kubeadm runbook becomes a backup (etcd 3.6 + kube-apiserver)', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let api: KubeClient;
  let snapshot: Buffer;
  let scratchDir: string;
  let dir: string;
  let imported: ImportBackupResult;
  const s3 = minioClient();
  const RUNBOOK_KEY = 'etcd-backups/2026-11-25-09-45';

  const names = async () =>
    (await api.list('/api/v1/namespaces/default/configmaps'))
      .map((c) => c.metadata.name)
      .filter((n) => !n.startsWith('kube-'))
      .sort();
  /** Everything under the cluster's own prefix: backups and staged imports. */
  const ours = async () => (await listObjects(s3, BUCKET, 'lifeboat/imp/')).map((o) => o.key).sort();

  beforeAll(async () => {
    const key = await keyFile();
    const bins = await serverBinaries();
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-import-'));
    scratchDir = await mkdtemp(join(tmpdir(), 'lifeboat-import-scratch-'));
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: 'imp', etcdLine: '3.6', withApiserver: true, storage: minioStorage(BUCKET) });
    api = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
    worker = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1' })], {
      encryptionKeys: { k1: { file: key.path } },
      drill: { scratchDir, etcd: { '3.6': bins.etcd['3.6'], '3.5': bins.etcd['3.5'] }, startTimeout: '60s' },
    });
    await api.create('/api/v1/namespaces/default/configmaps', configMap('before-snapshot'));
    await api.create('/api/v1/namespaces', { metadata: { name: 'team-before' } });
    // The runbook, verbatim: etcdctl snapshot save on the node, then a copy to the bucket under `date +%F-%H-%M`.
    await cluster.controlPlane.exec(['etcdctl', ...etcdctlArgs(), 'snapshot', 'save', '/var/lib/runbook.db']);
    snapshot = await readFile(cluster.controlPlane.path('/var/lib/runbook.db'));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: RUNBOOK_KEY, Body: snapshot }));
    await api.create('/api/v1/namespaces/default/configmaps', configMap('after-snapshot'));
    await api.create('/api/v1/namespaces', { metadata: { name: 'team-after' } });
  });
  afterAll(async () => {
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  it.each([
    ['random bytes', () => randomBytes(256 * 1024), /snapshot status says/],
    ['an empty file', () => Buffer.alloc(0), /is empty \(0 bytes\)/],
    ['a truncated snapshot', () => snapshot.subarray(0, Math.floor(snapshot.length / 2)), /not a usable etcd snapshot: /],
  ])('refuses %s, naming why, and stores nothing', async (_what, body, why) => {
    const key = `etcd-backups/bad-${Date.now()}`;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body() }));
    const failure = await failureOf(importIt(worker.client, worker.taskQueue, { cluster: 'imp', key }));
    expect(failure.type).toBe('NotASnapshot');
    expect(failure.message).toMatch(why);
    expect(failure.message).toContain(key);
    expect(await ours()).toEqual([]);
    expect(await readdir(scratchDir)).toEqual([]);
  });

  it('refuses a key that does not exist, naming it', async () => {
    const failure = await failureOf(importIt(worker.client, worker.taskQueue, { cluster: 'imp', key: 'etcd-backups/nope' }));
    expect(failure.type).toBe('SourceMissing');
    expect(failure.message).toMatch(/s3:\/\/imports\/etcd-backups\/nope does not exist/);
    expect(await ours()).toEqual([]);
  });

  it('imports the runbook snapshot from the bucket: verified, encrypted, a signed manifest marked imported', async () => {
    imported = await importIt(worker.client, worker.taskQueue, { cluster: 'imp', key: RUNBOOK_KEY });
    expect(imported.created).toBe('2026-11-25T09:45:00.000Z');
    expect(imported.createdFrom).toBe('name');
    expect(Number(imported.revision)).toBeGreaterThan(1);
    expect(imported.storageVersion).toMatch(/^3\.6/);
    expect(imported.snapshotKey).toMatch(/^lifeboat\/imp\/etcd\/20261125T094500Z-rev\d+\.db\.zst\.enc$/);
    expect(imported.resourceCounts.configmaps).toBeGreaterThan(0);
    const m = await readManifest(s3, BUCKET, imported.manifestKey);
    expect(m.source).toMatchObject({ kind: 'imported', from: RUNBOOK_KEY, createdFrom: 'name' });
    expect(m.controlPlaneFiles).toBeNull();
    expect(m.node).toBeUndefined();
    expect(m.kubernetesVersion).toBeUndefined();
    expect(m.auth).toMatchObject({ algorithm: 'hmac-sha256', keyId: 'k1' });
    expect(m.snapshot).toMatchObject({ plainSize: snapshot.length, encryption: { keyId: 'k1' } });
    expect(m.etcd).toMatchObject({ revision: imported.revision, totalKeys: imported.totalKeys, hash: imported.hash });
    // The raw snapshot stays where the user put it; nothing but the backup was added.
    expect(await ours()).toEqual([imported.manifestKey, imported.snapshotKey].sort());
    expect(await readdir(scratchDir)).toEqual([]);
  });

  it('the compiled CLI imports a local file (staged, then removed) and `backup list` marks both imported', async () => {
    const file = join(dir, 'snapshot-2026-11-25-10-00.db');
    await writeFile(file, snapshot);
    const config = await cliConfigFile(dir, worker.config);
    const r = await runCli(['--config', config, 'backup', 'import', 'imp', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^started import-imp-/);
    expect(r.stdout).toMatch(/imported snapshot-2026-11-25-10-00\.db into imp: revision \d+/);
    expect(r.stdout).toMatch(/created 2026-11-25T10:00:00.000Z \(from the name\)/);
    expect(r.stdout).toMatch(/encrypted with key k1/);
    expect((await ours()).filter((k) => k.includes('import-staging'))).toEqual([]);

    const list = await runCli(['--config', config, 'backup', 'list', 'imp']);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n').slice(1);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^2026-11-25T10:00:00.000Z .* \(imported from snapshot-2026-11-25-10-00\.db\)$/);
    expect(lines[1]).toMatch(new RegExp(`^2026-11-25T09:45:00.000Z .*${imported.snapshotKey} \\(imported from ${RUNBOOK_KEY}\\)$`));

    const refused = await runCli(['--config', config, 'backup', 'import', 'imp', join(dir, 'nothing-here')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/nothing-here: no such file/);
    const missing = await runCli(['--config', config, 'backup', 'import', 'imp', 'etcd-backups/not-there']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/^started import-imp-/);
    expect(missing.stderr).toMatch(/^import failed: cluster "imp", step plan: s3:\/\/imports\/etcd-backups\/not-there does not exist/);
    expect((await ours()).length).toBe(4);
  });

  it('a drill of the imported backup passes, saying what it could not check', async () => {
    const result = await worker.client.workflow.execute(drillRestore, {
      taskQueue: worker.taskQueue,
      workflowId: `drill-imp-${Date.now()}`,
      args: [{ cluster: 'imp', snapshot: imported.snapshotKey }],
    });
    expect(result.result).toBe('passed');
    expect(result.countedThrough).toBe('etcd');
    expect(result.checks.join('\n')).toMatch(/not checked: an imported snapshot .* has no control-plane archive/);
    expect(result.counts.differed).toEqual([]);
    expect(result.counts.matched.map((c) => c.resource)).toEqual(expect.arrayContaining(['configmaps', 'namespaces']));
  });

  it('a recovery in place from it brings back the objects from before the snapshot, not those after, with the node own PKI', async () => {
    expect(await names()).toEqual(['after-snapshot', 'before-snapshot']);
    const pkiBefore = await cluster.controlPlane.exec(['bash', '-c', 'cd /etc/kubernetes/pki && find . -type f | sort | xargs sha256sum']);
    const result = await recover(worker.client, worker.taskQueue, {
      cluster: 'imp',
      snapshot: imported.snapshotKey,
      approval: 'auto',
      reason: 'test',
      controlPlaneTimeoutSeconds: 120,
    });
    expect(result.outcome).toBe('restored');
    expect(result.plan.snapshot.manifestKey).toBe(imported.manifestKey);
    expect(await names()).toEqual(['before-snapshot']);
    const namespaces = (await api.list('/api/v1/namespaces')).map((n) => n.metadata.name);
    expect(namespaces).toContain('team-before');
    expect(namespaces).not.toContain('team-after');
    expect(result.previousDataDir).toMatch(/^\/var\/lib\/etcd\.before-/);
    expect(result.verification?.differed.filter((d) => d.strict)).toEqual([]);
    expect(result.verification?.matched.map((m) => m.resource)).toEqual(expect.arrayContaining(['configmaps', 'namespaces']));
    expect(await cluster.controlPlane.exec(['bash', '-c', 'cd /etc/kubernetes/pki && find . -type f | sort | xargs sha256sum'])).toBe(
      pkiBefore,
    );
  });

  it('refuses to rebuild a new node from it: it has no control-plane archive', async () => {
    const plan = await failureOf(
      recover(worker.client, worker.taskQueue, {
        cluster: 'imp',
        snapshot: imported.snapshotKey,
        mode: 'new-node',
        target: cluster.config.nodes[0].name,
        dryRun: true,
      }),
    );
    expect(plan.message).toMatch(/control-plane files/);
  });
});
