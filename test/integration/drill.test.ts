import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { serverBinaries } from '../../src/devserver/binaries';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { waitForControlPlane } from '../../sandbox/control-plane';
import { minioClient, minioStorage } from '../support/bed';
import { drill, drillConfigFor, seedObjects, drillReportOf } from '../support/drills';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { nodeFingerprint, replaceSnapshotKeepingCounts } from '../support/recovery';
import { startTestWorker, type RunningWorker } from '../support/worker';
import type { BackupClusterResult } from '../../workflows/backup-cluster';
import { drillRestore } from '../../workflows';
import { waitFor } from '../../src/devserver/processes';
import { registry } from '../../src/metrics/registry';
import { syncSchedules } from '../../src/schedules/backup-schedules';
import { drillScheduleIdOf } from '../../src/schedules/drill-schedules';
import { parseConfig } from '../../src/config/load';
import { workerProcess } from '../support/worker-process';
import { resultExplained } from '../support/kill';
import { failureOf } from '../support/failures';
import { MockActivityEnvironment } from '@temporalio/testing';
import pino from 'pino';
import { createActivities } from '../../activities';
import { testBed } from '../support/bed';
import { stallingLink } from '../support/slow-link';

const BUCKET = 'drills';

/** Every process whose command line names the folder (the throwaway etcd and kube-apiserver run with their files there). */
async function processesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(dir)) found.push(`${pid}: ${cmd.replace(/\0/g, ' ').slice(0, 120)}`);
  }
  return found;
}

describe('restore drills (etcd 3.6 + kube-apiserver 1.34, on the worker)', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let api: KubeClient;
  let scratchDir: string;
  let good: BackupClusterResult;
  let key: { path: string; key: Buffer };
  let drillConfig: Awaited<ReturnType<typeof drillConfigFor>>;
  const s3 = minioClient();

  beforeAll(async () => {
    key = await keyFile();
    drillConfig = await drillConfigFor('drill', ['3.6', '3.5']);
    scratchDir = drillConfig.scratchDir;
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: 'drl', etcdLine: '3.6', withApiserver: true, storage: minioStorage(BUCKET) });
    api = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
    worker = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1' })], {
      encryptionKeys: { k1: { file: key.path } },
      drill: drillConfig,
    });
    await seedObjects(api, 5);
    good = await runBackup(worker.client, worker.taskQueue, 'drl');
  });
  afterAll(async () => {
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  const nothingLeft = async () => {
    expect(await readdir(scratchDir)).toEqual([]);
    expect(await processesUnder(scratchDir)).toEqual([]);
  };

  it('a good backup drills green: counts match through the API, the report is written, nothing is left running or on disk', async () => {
    const before = await nodeFingerprint(cluster.controlPlane);
    const result = await drill(worker.client, worker.taskQueue, { cluster: 'drl' });
    expect(result.manifestKey).toBe(good.manifestKey);
    expect(result.countedThrough).toBe('api');
    const matched = Object.fromEntries(result.counts.matched.map((c) => [c.resource, c.actual]));
    expect(matched.configmaps).toBe(good.resourceCounts.configmaps);
    expect(matched.secrets).toBe(good.resourceCounts.secrets);
    expect(matched.namespaces).toBe(good.resourceCounts.namespaces);
    expect(result.counts.differed).toEqual([]);
    const report = await drillReportOf(s3, worker, good.manifestKey);
    expect(report).toMatchObject({ result: 'passed', problems: [], countedThrough: 'api', manifestKey: good.manifestKey });
    expect(report!.sampled.secrets).toBeGreaterThan(0);
    expect(report!.certificates.map((c) => c.file)).toContain('pki/apiserver.crt');
    // The kubeconfigs' client certificates too, by user; the kubelet's behind the link its kubelet.conf names, unpacked.
    const node = cluster.controlPlane.name;
    expect(report!.certificates).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ file: 'admin.conf', kubeconfig: 'admin.conf', user: 'kubernetes-admin' }),
        expect.objectContaining({
          file: 'kubelet/pki/kubelet-client-current.pem',
          kubeconfig: 'kubelet.conf',
          user: `system:node:${node}`,
        }),
      ]),
    );
    expect(report!.checks).toContain(`kubelet.conf: a new node takes over the kubelet identity of Node "${node}"`);
    expect(report!.checks.join('\n')).toMatch(/ca\.crt signs pki\/apiserver\.crt/);
    expect(report!.checks.join('\n')).toMatch(/manifest signed with key \S+: its tag matches/);
    await nothingLeft();
    // The drill ran on the worker: the cluster's node is byte-for-byte as it was.
    expect(await nodeFingerprint(cluster.controlPlane)).toBe(before);
    // The worker's metrics say so.
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/lifeboat_last_drill_success\{cluster="drl"\} 1/);
    const at = Number(/lifeboat_last_successful_drill_timestamp_seconds\{cluster="drl"\} (\S+)/.exec(metrics)?.[1]);
    expect(Math.abs(at - Date.now() / 1000)).toBeLessThan(120);
  });

  it('a fetch that stalls mid-way is left to the heartbeat timeout (no timer beats while its bytes are awaited), and cancellation ends it', async () => {
    const store = new URL(testBed().minio.endpoint);
    const link = await stallingLink(store.hostname, Number(store.port), good.snapshotKey.split('/').pop()!, 2048);
    const config = {
      ...worker.config,
      clusters: worker.config.clusters.map((c) => ({ ...c, storage: { ...c.storage, endpoint: `http://127.0.0.1:${link.port}` } })),
    };
    const { runDrill } = createActivities({ config, logger: pino({ level: 'silent' }) });
    const env = new MockActivityEnvironment();
    const beats: number[] = [];
    env.on('heartbeat', () => beats.push(Date.now()));
    try {
      const run = env.run(runDrill, { cluster: 'drl', manifestKey: good.manifestKey, runKey: `stall-${Date.now()}` });
      const settled = run.then(
        () => 'passed',
        (err: Error) => err.name,
      );
      await waitFor('the snapshot fetch to stall', async () => link.stalled(), 60_000);
      const stalledAt = Date.now();
      await new Promise((r) => setTimeout(r, 12_000)); // more than two of the timer's 5 s periods
      // A progress beat throttled to 2 s may still be on its way as the stall begins; none after that.
      expect(beats.filter((at) => at > stalledAt + 2_500)).toEqual([]);
      env.cancel();
      expect(await settled).toMatch(/Cancel|Abort/);
    } finally {
      await link.close();
    }
    expect(await readdir(scratchDir)).toEqual([]);
  });

  it('schedule sync creates drill-<cluster> only with drill.enabled, and --prune removes it again', async () => {
    const base = { temporal: worker.config.temporal, clusters: worker.config.clusters, encryptionKeys: worker.config.encryptionKeys };
    const on = parseConfig({ ...base, drill: { ...drillConfig, enabled: true, cron: ['15 3 * * *'] } }, 'test');
    const id = drillScheduleIdOf('drl');
    try {
      expect((await syncSchedules(worker.client, on)).created).toContain(id);
      const d = await worker.client.schedule.getHandle(id).describe();
      expect(d.spec.calendars?.length).toBe(1);
      expect(d.action).toMatchObject({
        type: 'startWorkflow',
        workflowType: 'drillRestore',
        args: [{ cluster: 'drl', snapshot: 'latest' }],
      });
      const off = parseConfig({ ...base, drill: drillConfig }, 'test');
      expect((await syncSchedules(worker.client, off)).orphaned).toContain(id);
      expect((await syncSchedules(worker.client, off, { prune: true })).removed).toContain(id);
    } finally {
      for (const s of [id, 'backup-drl', 'health-drl'])
        await worker.client.schedule
          .getHandle(s)
          .delete()
          .catch(() => undefined);
    }
  });

  it('a worker killed (SIGKILL) mid-drill: the retried drill stops the orphaned etcd and kube-apiserver, passes, and leaves nothing', async () => {
    const proc = await workerProcess('drillkill', withBackup(cluster, { encryptionKey: 'k1' }), key.path, { drill: drillConfig });
    let w = proc.launch();
    try {
      const handle = await worker.client.workflow.start(drillRestore, {
        taskQueue: proc.taskQueue,
        workflowId: `drill-drl-kill-${Date.now()}`,
        args: [{ cluster: 'drl', snapshot: good.snapshotKey }],
      });
      // Killed once the throwaway kube-apiserver runs: both servers are orphans of the dead worker then.
      await waitFor(
        'the throwaway kube-apiserver',
        async () => (await processesUnder(scratchDir)).some((p) => p.includes('kube-apiserver')),
        120_000,
        100,
      );
      w.child.kill('SIGKILL');
      await w.exited;
      expect((await processesUnder(scratchDir)).length).toBeGreaterThan(0);
      w = proc.launch();
      const result = await resultExplained(handle, [w.logFile]);
      expect(result.manifestKey).toBe(good.manifestKey);
      const history = await handle.fetchHistory();
      expect((history.events ?? []).some((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1)).toBe(true);
      await nothingLeft();
    } finally {
      await w.stop();
    }
  });

  it('without a kube-apiserver for the version it counts in etcd, and the report says so', async () => {
    const etcdOnly = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1' })], {
      encryptionKeys: { k1: { file: key.path } },
      drill: { ...drillConfig, kubeApiserver: {} },
    });
    try {
      const result = await drill(etcdOnly.client, etcdOnly.taskQueue, { cluster: 'drl', snapshot: good.snapshotKey });
      expect(result.countedThrough).toBe('etcd');
      expect(result.checks.join('\n')).toMatch(/counted keys in etcd only: no kube-apiserver configured for Kubernetes/);
      expect(result.counts.matched.find((c) => c.resource === 'configmaps')?.actual).toBe(good.resourceCounts.configmaps);
      expect(result.counts.differed).toEqual([]);
      expect((await drillReportOf(s3, worker, good.manifestKey))?.countedThrough).toBe('etcd');
    } finally {
      await etcdOnly.stop();
    }
    await nothingLeft();
  });

  it('a backup drilled with another key under its key id fails its drill at the manifest, and the report says so', async () => {
    const other = await keyFile();
    const stranger = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1' })], {
      encryptionKeys: { k1: { file: other.path } },
      drill: { scratchDir, etcd: { '3.6': (await serverBinaries()).etcd['3.6'] } },
    });
    try {
      const f = await failureOf(drill(stranger.client, stranger.taskQueue, { cluster: 'drl', snapshot: good.snapshotKey }));
      expect(f.type).toBe('DrillFailed');
      expect(f.message).toContain(good.manifestKey);
      // Its tag cannot match under the wrong key: nothing of the backup is believed, so nothing is fetched.
      const untrusted = /its manifest cannot be trusted: its tag does not match its content .*signed with another key "k1"/;
      expect(f.message).toMatch(untrusted);
      const report = await drillReportOf(s3, worker, good.manifestKey).catch((err: Error) => err);
      // The report was signed with the other key too: the real worker does not believe it either.
      expect(report).toBeInstanceOf(Error);
      expect((report as Error).message).toMatch(/drill report .* cannot be trusted: its tag does not match/);
    } finally {
      await stranger.stop();
    }
    await nothingLeft();
  });

  it('a drill runs while a backup of the same cluster runs: both succeed', async () => {
    const [backup, drilled] = await Promise.all([
      runBackup(worker.client, worker.taskQueue, 'drl'),
      drill(worker.client, worker.taskQueue, { cluster: 'drl', snapshot: good.snapshotKey }),
    ]);
    expect(Number(backup.revision)).toBeGreaterThan(0);
    expect(drilled.manifestKey).toBe(good.manifestKey);
    expect((await drillReportOf(s3, worker, good.manifestKey))?.result).toBe('passed');
    await nothingLeft();
  });

  it('a tampered backup fails its drill naming the checksum, and the report says so', async () => {
    const victim = await runBackup(worker.client, worker.taskQueue, 'drl');
    const body = Buffer.from(
      await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: victim.snapshotKey }))).Body!.transformToByteArray(),
    );
    body[Math.floor(body.length / 2)] ^= 0xff;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: victim.snapshotKey, Body: body }));
    const f = await failureOf(drill(worker.client, worker.taskQueue, { cluster: 'drl', snapshot: victim.snapshotKey }));
    expect(f.type).toBe('DrillFailed');
    expect(f.message).toContain(victim.manifestKey);
    expect(f.message).toMatch(/checksum/);
    const report = await drillReportOf(s3, worker, victim.manifestKey);
    expect(report?.result).toBe('failed');
    expect(report?.problems.join('\n')).toMatch(/checksum/);
    // "latest" passes over it, names it, and drills the one before.
    const latest = await drill(worker.client, worker.taskQueue, { cluster: 'drl' });
    expect(latest.manifestKey).not.toBe(victim.manifestKey);
    expect(latest.passedOver.map((p) => p.manifestKey)).toContain(victim.manifestKey);
    await nothingLeft();
  });

  it("a backup holding another backup's snapshot under a re-signed manifest (an insider with the key) fails its drill on the revision", async () => {
    const older = await runBackup(worker.client, worker.taskQueue, 'drl');
    await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: `after-older-${Date.now()}` } });
    const newer = await runBackup(worker.client, worker.taskQueue, 'drl');
    // Every check before the restore passes (tag, bucket checksum, sha256); the newer snapshot still holds the older
    // revision's objects, so counts at that revision can match: only the restored etcd's own revision tells.
    const putBack = await replaceSnapshotKeepingCounts(s3, BUCKET, older, newer, key.key, 'k1');
    try {
      const f = await failureOf(drill(worker.client, worker.taskQueue, { cluster: 'drl', snapshot: older.snapshotKey }));
      expect(f.type).toBe('DrillFailed');
      expect(f.message).toContain(`the restored etcd is at revision ${newer.revision}, the manifest says ${older.revision}`);
      expect((await drillReportOf(s3, worker, older.manifestKey))?.result).toBe('failed');
    } finally {
      await putBack();
    }
    await nothingLeft();
  });

  it('refuses at once, naming the folder and the sizes, when the scratch dir has too little room; nothing is left there', async () => {
    // A 2 MiB tmpfs: far less than the snapshot needs twice.
    const tiny = await mkdtemp(join(tmpdir(), 'lifeboat-drill-tiny-'));
    await promisify(execFile)('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', tiny]);
    const small = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1' })], {
      encryptionKeys: { k1: { file: key.path } },
      drill: { ...drillConfig, scratchDir: tiny },
    });
    try {
      const f = await failureOf(drill(small.client, small.taskQueue, { cluster: 'drl', snapshot: good.snapshotKey }));
      expect(f.type).toBe('NoSpace');
      expect(f.message).toMatch(
        new RegExp(`step restore: the drill's scratch dir ${tiny} has [\\d.]+ MiB free; this backup needs about [\\d.]+ MiB`),
      );
      expect(await readdir(tiny)).toEqual([]);
    } finally {
      await small.stop();
      await promisify(execFile)('umount', [tiny]);
    }
  });

  it('archives the encryption config the apiserver references (its Secrets read back); a referenced file outside /etc/kubernetes fails the drill, named', async () => {
    // Encryption at rest, as a cluster would set it up: the config file beside the PKI, mounted into the API server; and
    // an audit policy somewhere else on the node, which the backup names but does not archive.
    const node = cluster.controlPlane;
    const encConfig = {
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'EncryptionConfiguration',
      resources: [
        {
          resources: ['secrets'],
          providers: [{ aescbc: { keys: [{ name: 'k1', secret: Buffer.alloc(32, 7).toString('base64') }] } }, { identity: {} }],
        },
      ],
    };
    await node.exec(['mkdir', '-p', '/etc/kubernetes/enc', '/var/lib/lifeboat-audit']);
    await writeFile(node.path('/etc/kubernetes/enc/config.yaml'), stringify(encConfig));
    await writeFile(
      node.path('/var/lib/lifeboat-audit/policy.yaml'),
      stringify({ apiVersion: 'audit.k8s.io/v1', kind: 'Policy', rules: [{ level: 'None' }] }),
    );
    const manifestPath = node.path('/etc/kubernetes/manifests/kube-apiserver.yaml');
    const pod = parse(await readFile(manifestPath, 'utf8')) as {
      spec: { containers: { command: string[]; volumeMounts: unknown[] }[]; volumes: unknown[] };
    };
    pod.spec.containers[0].command.push(
      '--encryption-provider-config=/etc/kubernetes/enc/config.yaml',
      '--audit-policy-file=/var/lib/lifeboat-audit/policy.yaml',
    );
    pod.spec.containers[0].volumeMounts.push(
      { mountPath: '/etc/kubernetes/enc', name: 'enc', readOnly: true },
      { mountPath: '/var/lib/lifeboat-audit', name: 'audit', readOnly: true },
    );
    pod.spec.volumes.push(
      { name: 'enc', hostPath: { path: '/etc/kubernetes/enc', type: 'DirectoryOrCreate' } },
      { name: 'audit', hostPath: { path: '/var/lib/lifeboat-audit', type: 'DirectoryOrCreate' } },
    );
    await writeFile(manifestPath, stringify(pod));
    // The kubelet replaces the API server pod: wait until the old one is gone, then for the new one.
    const deadline = Date.now() + 90_000;
    while ((await api.ready()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    await waitForControlPlane(node, { withApiserver: true, timeoutMs: 120_000 });
    await api.create('/api/v1/namespaces/default/secrets', {
      metadata: { name: 'encrypted' },
      data: { k: Buffer.from('v').toString('base64') },
    });
    const backup = await runBackup(worker.client, worker.taskQueue, 'drl');
    const manifest = JSON.parse(
      await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: backup.manifestKey }))).Body!.transformToString(),
    ) as { controlPlaneFiles: { files: string[]; notArchived?: string[] } };
    expect(manifest.controlPlaneFiles.files).toContain('enc/config.yaml');
    expect(manifest.controlPlaneFiles.notArchived).toEqual(['/var/lib/lifeboat-audit/policy.yaml']);

    const f = await failureOf(drill(worker.client, worker.taskQueue, { cluster: 'drl', snapshot: backup.snapshotKey }));
    expect(f.type).toBe('DrillFailed');
    expect(f.message).toContain('/var/lib/lifeboat-audit/policy.yaml (--audit-policy-file)');
    const report = await drillReportOf(s3, worker, backup.manifestKey);
    expect(report?.result).toBe('failed');
    const problems = report!.problems.join('\n');
    expect(problems).toMatch(/kube-apiserver\.yaml references a file the control-plane archive does not hold/);
    expect(problems).not.toContain('/etc/kubernetes/enc/config.yaml');
    // The encryption config came along: the throwaway API server decrypted the Secrets it sampled.
    expect(problems).not.toMatch(/secrets/i);
    expect(report!.sampled.secrets).toBeGreaterThan(0);
    await nothingLeft();
  });
});
