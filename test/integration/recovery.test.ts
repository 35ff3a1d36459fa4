import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { readManifest } from '../../src/backup/catalog';
import { signManifest } from '../../src/backup/manifest-auth';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { RECOVERY_ANNOTATION } from '../../src/recovery/static-pod-manifest';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { etcdctlArgs } from '../../sandbox/control-plane';
import { scheduleIdOf, syncBackupSchedules } from '../../src/schedules/backup-schedules';
import { workflowsPath } from '../../src/temporal/worker';
import { minioClient, minioStorage, testBed } from '../support/bed';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { historyText } from '../support/history';
import { nodeFingerprint, recover, startRecovery } from '../support/recovery';
import { startTestWorker, type RunningWorker } from '../support/worker';
import type { BackupClusterResult } from '../../workflows/backup-cluster';
import { rejectSignal } from '../../workflows';

const BUCKET = 'recovery';
const configMap = (name: string) => ({ metadata: { name }, data: { name } });

describe('recovery in place (etcd 3.6 + kube-apiserver)', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let api: KubeClient;
  let older: BackupClusterResult;
  let newest: BackupClusterResult;
  const s3 = minioClient();
  const histories: { workflowId: string; runId: string; history: unknown }[] = [];
  let key: Awaited<ReturnType<typeof keyFile>>;

  const names = async () =>
    (await api.list('/api/v1/namespaces/default/configmaps'))
      .map((c) => c.metadata.name)
      .filter((n) => !n.startsWith('kube-'))
      .sort();

  beforeAll(async () => {
    key = await keyFile();
    cluster = await createSandboxCluster({ name: 'rec', etcdLine: '3.6', withApiserver: true, storage: minioStorage(BUCKET) });
    api = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    worker = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1' })], { encryptionKeys: { k1: { file: key.path } } });
    await syncBackupSchedules(worker.client, worker.config);
    await api.create('/api/v1/namespaces/default/configmaps', configMap('first'));
    older = await runBackup(worker.client, worker.taskQueue, 'rec');
    await api.create('/api/v1/namespaces/default/configmaps', configMap('before-backup'));
    await api.create('/api/v1/namespaces', { metadata: { name: 'team-before' } });
    newest = await runBackup(worker.client, worker.taskQueue, 'rec');
    await api.create('/api/v1/namespaces/default/configmaps', configMap('after-backup'));
    await api.create('/api/v1/namespaces', { metadata: { name: 'team-after' } });
  });
  afterAll(async () => {
    await worker?.client.schedule
      .getHandle(scheduleIdOf('rec'))
      .delete()
      .catch(() => undefined);
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  const etcdRevision = async () =>
    (
      JSON.parse(await cluster.controlPlane.exec(['etcdctl', ...etcdctlArgs(), 'endpoint', 'status', '-w', 'json'])) as {
        Status: { header: { revision: number } };
      }[]
    )[0].Status.header.revision;
  const keep = async (workflowId: string) => {
    const handle = worker.client.workflow.getHandle(workflowId);
    histories.push({ workflowId, runId: (await handle.describe()).runId, history: await handle.fetchHistory() });
  };

  it('a dry run returns the plan and leaves the node byte-for-byte unchanged', async () => {
    const before = await nodeFingerprint(cluster.controlPlane);
    const result = await recover(worker.client, worker.taskQueue, { cluster: 'rec', dryRun: true });
    await keep('recover-rec');
    expect(result.outcome).toBe('planned');
    expect(result.plan.snapshot.manifestKey).toBe(newest.manifestKey);
    expect(result.plan.tool).toMatchObject({ kind: 'etcdutl', bumpRevision: true });
    expect(result.plan.paths.dataDir).toBe('/var/lib/etcd');
    expect(result.plan.steps.length).toBeGreaterThan(4);
    expect(await nodeFingerprint(cluster.controlPlane)).toBe(before);
  });

  it('twenty concurrent starts join one execution; a rejection changes nothing and backups stay on', async () => {
    const before = await nodeFingerprint(cluster.controlPlane);
    const handles = await Promise.all(
      Array.from({ length: 20 }, () =>
        startRecovery(worker.client, worker.taskQueue, { cluster: 'rec', approval: 'required', reason: 'alert' }),
      ),
    );
    const runIds = new Set(handles.map((h) => h.firstExecutionRunId));
    expect(runIds.size).toBe(1);
    await handles[0].signal(rejectSignal, { by: 'oncall', reason: 'false alarm' });
    const result = await handles[0].result();
    await keep('recover-rec');
    expect(result.outcome).toBe('rejected');
    expect(result.approval).toMatchObject({ by: 'oncall', decision: 'rejected' });
    expect(await nodeFingerprint(cluster.controlPlane)).toBe(before);
    expect((await worker.client.schedule.getHandle(scheduleIdOf('rec')).describe()).state.paused).toBe(false);
  });

  it('refuses a tampered backup named by key, and passes over a tampered newest one for "latest"', async () => {
    // Corrupt the newest backup's snapshot object in the bucket (one byte flipped, as bit rot or an attacker would).
    const body = Buffer.from(
      await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: newest.snapshotKey }))).Body!.transformToByteArray(),
    );
    const original = Buffer.from(body);
    body[Math.floor(body.length / 2)] ^= 0xff;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: newest.snapshotKey, Body: body }));
    try {
      const before = await nodeFingerprint(cluster.controlPlane);
      const err = await recover(worker.client, worker.taskQueue, { cluster: 'rec', snapshot: newest.snapshotKey, approval: 'auto' }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect(((err as WorkflowFailedError).cause as { type?: string }).type).toBe('CorruptSnapshot');
      expect(((err as WorkflowFailedError).cause as Error).message).toMatch(/refusing .*checksum/);
      const plan = await recover(worker.client, worker.taskQueue, { cluster: 'rec', dryRun: true });
      expect(plan.plan.snapshot.manifestKey).toBe(older.manifestKey);
      expect(plan.plan.skipped).toEqual([
        expect.objectContaining({ manifestKey: newest.manifestKey, reason: expect.stringMatching(/checksum/) }),
      ]);
      expect(await nodeFingerprint(cluster.controlPlane)).toBe(before);
    } finally {
      // Put the original bytes back the way the backup stored them (single part, CRC32 checksum), so the bucket's
      // checksum matches the manifest again.
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: newest.snapshotKey, Body: original, ChecksumAlgorithm: 'CRC32' }));
    }
  });

  it('rejects bad input before any step runs, naming the field', async () => {
    const err = await recover(worker.client, worker.taskQueue, {
      cluster: 'rec',
      snapshot: 'x; rm -rf /',
      mode: 'sideways' as never,
    }).catch((e: unknown) => e);
    const message = ((err as WorkflowFailedError).cause as Error).message;
    expect(message).toMatch(/snapshot: expected "latest" or a backup key/);
    expect(message).toMatch(/mode: expected "in-place" or "new-node"/);
    const unknown = await recover(worker.client, worker.taskQueue, { cluster: 'nope' }).catch((e: unknown) => e);
    expect(((unknown as WorkflowFailedError).cause as Error).message).toMatch(/unknown cluster "nope"/);
  });

  it('restores: objects from before the backup are back, those after it are gone, the old data dir is kept', async () => {
    expect(await names()).toEqual(['after-backup', 'before-backup', 'first']);
    const podsBefore = await cluster.controlPlane.pods();
    const manifestsBefore = await cluster.controlPlane.exec(['bash', '-c', 'cd /etc/kubernetes/manifests && sha256sum *.yaml']);
    const result = await recover(worker.client, worker.taskQueue, {
      cluster: 'rec',
      approval: 'auto',
      reason: 'test',
      controlPlaneTimeoutSeconds: 120,
    });
    await keep('recover-rec');
    expect(result.outcome).toBe('restored');
    // The real kubelet: kube-apiserver's 30 s grace period is cut short through the container runtime (etcd stops
    // on its own SIGTERM) ...
    const stop = result.steps.find((st) => st.step === 'stop control plane')!;
    expect(stop.detail).toMatch(/stopped through the container runtime: .*kube-apiserver/);
    expect(stop.detail).not.toMatch(/runtime: [^;]*\betcd\b/);
    expect(Date.parse(stop.endedAt!) - Date.parse(stop.startedAt!)).toBeLessThan(15_000);
    // ... and the manifests come back annotated with the run, so the kubelet starts new pods (new UIDs, no crash
    // back-off inherited from the stopped ones); the originals stay untouched in manifests-before.
    const runKey = result.plan.paths.runDir.split('/').pop()!;
    // Read as YAML: a run key of digits only is written quoted (it must stay a string for the kubelet).
    for (const f of ['etcd.yaml', 'kube-apiserver.yaml', 'kube-controller-manager.yaml', 'kube-scheduler.yaml']) {
      const pod = parseYaml(await readFile(cluster.controlPlane.path(`/etc/kubernetes/manifests/${f}`), 'utf8')) as {
        metadata: { annotations: Record<string, unknown> };
      };
      expect(pod.metadata.annotations[RECOVERY_ANNOTATION]).toBe(runKey);
    }
    expect(await cluster.controlPlane.exec(['bash', '-c', `cd ${result.plan.paths.asideManifestsDir} && sha256sum *.yaml`])).toBe(
      manifestsBefore,
    );
    const podsAfter = await cluster.controlPlane.pods();
    expect(podsAfter.map((p) => p.name).sort()).toEqual(podsBefore.map((p) => p.name).sort());
    for (const p of podsAfter) expect(podsBefore.find((b) => b.name === p.name)!.uid).not.toBe(p.uid);
    expect(result.plan.snapshot.manifestKey).toBe(newest.manifestKey);
    expect(await names()).toEqual(['before-backup', 'first']);
    const namespaces = (await api.list('/api/v1/namespaces')).map((n) => n.metadata.name);
    expect(namespaces).toContain('team-before');
    expect(namespaces).not.toContain('team-after');
    expect(result.previousDataDir).toMatch(/^\/var\/lib\/etcd\.before-/);
    expect((await stat(cluster.controlPlane.path(`${result.previousDataDir}/member`))).isDirectory()).toBe(true);
    expect(result.verification?.differed.filter((d) => d.strict)).toEqual([]);
    expect(result.verification?.matched.map((m) => m.resource)).toEqual(expect.arrayContaining(['configmaps', 'namespaces']));
    expect(result.steps.every((s) => s.status === 'done' || s.step === 'approval')).toBe(true);
    expect((await worker.client.schedule.getHandle(scheduleIdOf('rec')).describe()).state.paused).toBe(false);
    // Revisions moved forward, not back: watchers and informers see no time travel.
    expect(await etcdRevision()).toBeGreaterThan(1_000_000_000);
  });

  it('passes over a newest backup whose content fails on the way to the node (its checksum rewritten to match) for the previous good one', async () => {
    // Flip a byte of the newest snapshot and rewrite its manifest's checksum so the bucket agrees, re-signing the
    // manifest: what only a holder of the key (or a store that lies about its checksums) could do; anyone else's edit
    // is caught by the manifest's tag at the plan step (recovery-preflight.test.ts). Only the content check
    // (authenticated encryption) can tell. The rewritten manifest records a bare SHA-256, as manifests from before
    // CRC32 parts do, so that format is still checked too.
    const body = Buffer.from(
      await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: newest.snapshotKey }))).Body!.transformToByteArray(),
    );
    body[Math.floor(body.length / 2)] ^= 0xff;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: newest.snapshotKey, Body: body, ChecksumAlgorithm: 'SHA256' }));
    const manifest = await readManifest(s3, BUCKET, newest.manifestKey);
    manifest.snapshot.s3Checksum = createHash('sha256').update(body).digest('base64');
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: newest.manifestKey, Body: JSON.stringify(signManifest(manifest, key.key, 'k1')) }),
    );
    const plan = await recover(worker.client, worker.taskQueue, { cluster: 'rec', dryRun: true });
    expect(plan.plan.snapshot.manifestKey).toBe(newest.manifestKey); // the plan's checks cannot see it
    await api.create('/api/v1/namespaces/default/configmaps', configMap('after-restore'));

    const revisionBefore = await etcdRevision();
    const result = await recover(worker.client, worker.taskQueue, { cluster: 'rec', approval: 'auto', controlPlaneTimeoutSeconds: 120 });
    await keep('recover-rec');
    expect(result.outcome).toBe('restored');
    expect(result.plan.snapshot.manifestKey).toBe(older.manifestKey);
    // An older backup restored after a newer one: the bump is computed from the live revision (which the first
    // restore had already moved past 10^9), so the revision still only moves forward.
    expect(Number(result.plan.knownRevisions?.live)).toBeGreaterThanOrEqual(revisionBefore);
    expect(await etcdRevision()).toBeGreaterThan(revisionBefore);
    expect(result.plan.skipped).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ manifestKey: newest.manifestKey, reason: expect.stringMatching(/failed verification while fetched/) }),
      ]),
    );
    expect(result.steps.find((st) => st.step === 'fetch')?.detail).toMatch(/passed over/);
    expect(await names()).toEqual(['first']);
  });

  it('keeps key material, S3 secrets, PKI and kubeconfig credentials out of its recovery histories', async () => {
    expect(histories.length).toBeGreaterThanOrEqual(3);
    const pki = (f: string) => readFile(cluster.controlPlane.path(`/etc/kubernetes/${f}`), 'utf8');
    const admin = credentialsFromKubeconfig(await pki('admin.conf'));
    const forbidden = [
      key.key.toString('base64'),
      key.key.toString('hex'),
      testBed().minio.secretAccessKey,
      'PRIVATE KEY',
      (await pki('pki/ca.key')).split('\n')[1],
      (await pki('pki/etcd/healthcheck-client.key')).split('\n')[1],
      admin.keyPem!.toString('base64').slice(0, 40),
      admin.keyPem!.toString('utf8').split('\n')[1],
    ];
    for (const h of histories) {
      const text = historyText(h.history as Parameters<typeof historyText>[0]);
      expect(text).toContain('"cluster":"rec"'); // the search does see payloads
      for (const secret of forbidden) expect(text).not.toContain(secret);
    }
  });

  it('its recovery histories replay against the current workflow code without non-determinism', async () => {
    expect(histories.length).toBeGreaterThanOrEqual(3);
    const errors: string[] = [];
    for await (const r of Worker.runReplayHistories(
      { workflowsPath },
      histories.map((h) => ({ workflowId: h.workflowId, history: h.history as never })),
    )) {
      if (r.error) errors.push(`${r.workflowId}: ${String(r.error)}`);
    }
    expect(errors).toEqual([]);
    // LIFEBOAT_RECORD_HISTORIES=<dir> keeps them (in the temporal CLI's JSON) as fixtures for test/unit/replay.test.ts.
    const out = process.env.LIFEBOAT_RECORD_HISTORIES;
    if (out) {
      for (const [i, h] of histories.entries()) {
        const { stdout } = await promisify(execFile)(
          cluster.binaries.temporal,
          ['workflow', 'show', '-w', h.workflowId, '-r', h.runId, '--output', 'json', '--address', testBed().temporalAddress],
          { maxBuffer: 64 << 20 },
        );
        await writeFile(join(out, `recover-${i}.json`), stdout);
      }
    }
  });
});
