import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import { checkHealth } from '../../activities/health/check-health';
import { parseConfig } from '../../src/config/load';
import type { ClusterConfig, Config } from '../../src/config/schema';
import type { HealthReport } from '../../src/health/types';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { freePort, startProcess, waitFor, type ManagedProcess } from '../../src/devserver/processes';
import { syncBackupSchedules } from '../../src/schedules/backup-schedules';
import { minioClient, minioStorage, testBed } from '../support/bed';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { startRecovery } from '../support/recovery';
import type { BackupClusterResult } from '../../workflows/backup-cluster';
import { checkClusterHealth, progressQuery, rejectSignal } from '../../workflows';

const BUCKET = 'health';

/** A Prometheus text-format sample: name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format (0.0.4), enough to check what a scrape carries: comments skipped, labels unescaped. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line.trim());
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad value in: ${line}`);
    samples.push({ name: m[1], labels, value });
  }
  return samples;
}

function scrape(address: string): Promise<{ status: number; contentType?: string; text: string }> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path: '/metrics', timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], text: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('health checks and metrics (etcd 3.6, kube-apiserver, scheduler, controller-manager)', () => {
  let cluster: SandboxCluster;
  let config: Config;
  let client: Client;
  let connection: Connection;
  let worker: ManagedProcess;
  let taskQueue: string;
  let metricsAddress: string;
  let configFile: string;
  let backup: BackupClusterResult;
  const s3 = minioClient();
  const logger = pino({ level: 'silent' });
  const check = (input: { cluster: string; timeoutSeconds?: number }, cfg = config) => checkHealth({ config: cfg, logger, client })(input);
  const byName = (r: HealthReport) => Object.fromEntries(r.components.map((c) => [c.component, c]));
  /** `lifeboat health` as users run it (compiled CLI): exit code and output. */
  const cliHealth = async (...args: string[]) =>
    promisify(execFile)('node', [join(__dirname, '../../dist/src/cli/main.js'), '--config', configFile, 'health', ...args], {
      env: { ...process.env },
    }).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    );
  const runHealthWorkflow = (id: string) =>
    client.workflow.execute(checkClusterHealth, { taskQueue, workflowId: id, args: [{ cluster: 'hc' }] });

  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: 'hc', etcdLine: '3.6', withApiserver: true, storage: minioStorage(BUCKET) });
    const key = await keyFile();
    const hc: ClusterConfig = { ...withBackup(cluster, { encryptionKey: 'k1' }), health: { interval: '1h', timeout: '5s' } };
    // A second cluster whose backups fail at the plan step (its bucket does not exist): lifeboat_backups_failed.
    const broken: ClusterConfig = {
      ...withBackup(cluster, { encryptionKey: 'k1' }),
      name: 'broken',
      storage: minioStorage('no-such-bucket-for-health'),
    };
    taskQueue = `health-${process.pid}-${Date.now()}`;
    const raw = {
      temporal: { address: testBed().temporalAddress, taskQueue },
      encryptionKeys: { k1: { file: key.path } },
      clusters: [hc, broken],
    };
    config = parseConfig(raw, 'health test config');
    // The engine's worker as users run it, with its metrics endpoint.
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-health-'));
    configFile = join(dir, 'config.yaml');
    await writeFile(configFile, stringify(raw));
    metricsAddress = `127.0.0.1:${await freePort()}`;
    worker = startProcess(
      'worker',
      'node',
      [join(__dirname, '../../dist/src/cli/main.js'), '--config', join(dir, 'config.yaml'), 'worker'],
      {
        logFile: join(dir, 'worker.log'),
        env: { ...process.env, LOG_FORMAT: 'json', LIFEBOAT_METRICS_ADDRESS: metricsAddress },
      },
    );
    await waitFor(
      `the worker's metrics server at ${metricsAddress} (log: ${join(dir, 'worker.log')})`,
      async () => (await scrape(metricsAddress)).status === 200,
      60_000,
      300,
    );
    connection = await Connection.connect({ address: testBed().temporalAddress });
    client = new Client({ connection, namespace: 'default' });
  });
  afterAll(async () => {
    for (const id of ['backup-hc', 'health-hc', 'backup-broken', 'health-broken'])
      await client?.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    await worker?.stop();
    await connection?.close();
    await cluster?.destroy();
    s3.destroy();
  });

  it('reports all five components up, etcd, disk and certificates; no backup yet is a problem line', async () => {
    const r = await check({ cluster: 'hc' });
    expect(r.components.map((c) => c.component)).toEqual(['kube-apiserver', 'etcd', 'kube-scheduler', 'kube-controller-manager', 'node']);
    expect(r.components.filter((c) => !c.up)).toEqual([]);
    expect(byName(r)['kube-apiserver'].detail).toMatch(/\/livez ok, \/readyz ok/);
    expect(r.etcd).toEqual({
      hasLeader: true,
      dbSizeBytes: expect.any(Number),
      quotaBytes: 2 * 1024 ** 3,
      revision: expect.stringMatching(/^\d+$/),
    });
    expect(r.etcd!.dbSizeBytes).toBeGreaterThan(100_000);
    expect(r.disk!.path).toBe('/var/lib/etcd');
    expect(r.disk!.freeBytes).toBeGreaterThan(0);
    expect(r.disk!.totalBytes).toBeGreaterThanOrEqual(r.disk!.freeBytes);
    // Every certificate kubeadm lists, with the sandbox PKI's lifetimes: leaves 1 year, CAs 10 years.
    const certs = Object.fromEntries(r.certificates.map((c) => [c.name, c]));
    expect(Object.keys(certs).sort()).toEqual(
      [
        'admin.conf',
        'apiserver',
        'apiserver-etcd-client',
        'apiserver-kubelet-client',
        'ca',
        'controller-manager.conf',
        'etcd-ca',
        'etcd-healthcheck-client',
        'etcd-peer',
        'etcd-server',
        'front-proxy-ca',
        'front-proxy-client',
        'scheduler.conf',
        'super-admin.conf',
      ].sort(),
    );
    const daysLeft = (name: string) => (Date.parse(certs[name].notAfter) - Date.now()) / 86_400_000;
    for (const leaf of ['apiserver', 'etcd-server', 'admin.conf', 'scheduler.conf']) expect(daysLeft(leaf)).toBeGreaterThan(363);
    for (const leaf of ['apiserver', 'etcd-server', 'admin.conf', 'scheduler.conf']) expect(daysLeft(leaf)).toBeLessThan(367);
    expect(daysLeft('ca')).toBeGreaterThan(3640);
    expect(certs['etcd-ca'].path).toBe('/etc/kubernetes/pki/etcd/ca.crt');
    expect(certs['admin.conf'].path).toBe('/etc/kubernetes/admin.conf');
    expect(r.newestBackup).toBeUndefined();
    expect(r.problems).toEqual([expect.stringMatching(/^backups: none found for cluster "hc"/)]);
    expect(JSON.stringify(r)).not.toMatch(/BEGIN|PRIVATE|secret/i);
  });

  it('finds the newest backup once one is taken', async () => {
    backup = await runBackup(client, taskQueue, 'hc', `backup-hc-${Date.now()}`);
    const r = await check({ cluster: 'hc' });
    expect(r.newestBackup).toEqual({
      key: backup.snapshotKey,
      created: backup.created,
      ageSeconds: expect.any(Number),
      sizeBytes: backup.storedBytes,
      revision: backup.revision,
    });
    expect(r.newestBackup!.ageSeconds).toBeLessThan(120);
    expect(r.problems).toEqual([]);
  });

  it('reports the scheduler down when its static pod is gone, the others up', async () => {
    const node = cluster.controlPlane;
    await node.exec(['mv', '/etc/kubernetes/manifests/kube-scheduler.yaml', '/etc/kubernetes/kube-scheduler.yaml.aside']);
    try {
      await waitFor('kube-scheduler to stop', async () => !(await node.exec(['ss', '-Htln'])).includes(':10259'), 30_000, 200);
      const r = await check({ cluster: 'hc' });
      const c = byName(r);
      expect(c['kube-scheduler']).toEqual({
        component: 'kube-scheduler',
        up: false,
        detail: 'connection refused at https://127.0.0.1:10259/healthz',
      });
      for (const other of ['kube-apiserver', 'etcd', 'kube-controller-manager', 'node']) expect(c[other].up).toBe(true);
      expect(r.problems).toEqual(['kube-scheduler down on node cp1: connection refused at https://127.0.0.1:10259/healthz']);
      const cli = await cliHealth('hc');
      expect(cli.code).toBe(1);
      expect(cli.stdout).toMatch(/kube-scheduler\s+DOWN\s+connection refused/);
      expect(cli.stdout).toMatch(/etcd\s+up\s+healthy/);
      // The same through the worker (workflow checkClusterHealth): its gauges now say so.
      const viaWorker = await runHealthWorkflow(`health-hc-down-${Date.now()}`);
      expect(byName(viaWorker)['kube-scheduler'].up).toBe(false);
      const samples = parseExposition((await scrape(metricsAddress)).text);
      expect(
        samples.find((s) => s.name === 'lifeboat_component_up' && s.labels.cluster === 'hc' && s.labels.component === 'kube-scheduler')
          ?.value,
      ).toBe(0);
    } finally {
      await node.exec(['mv', '/etc/kubernetes/kube-scheduler.yaml.aside', '/etc/kubernetes/manifests/kube-scheduler.yaml']);
    }
    await waitFor('kube-scheduler back', async () => byName(await check({ cluster: 'hc' }))['kube-scheduler'].up, 60_000, 1000);
    const cli = await cliHealth('hc');
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/certificates \(soonest first\):\n\s+\S+\s+\d{4}-\d\d-\d\d\s+36\d days left/);
    expect(cli.stdout).toMatch(/backup:\s+newest \d+ s old/);
  });

  it('reports an unreachable node without throwing, and still probes the API server with the CA it knows', async () => {
    const unreachable = parseConfig(
      { ...config, clusters: config.clusters.map((c) => (c.name === 'hc' ? { ...c, nodes: c.nodes.map((n) => ({ ...n, port: 2 })) } : c)) },
      'unreachable node',
    );
    const started = Date.now();
    const r = await check({ cluster: 'hc', timeoutSeconds: 2 }, unreachable);
    expect(Date.now() - started).toBeLessThan(15_000);
    const c = byName(r);
    expect(c.node.up).toBe(false);
    expect(c.node.detail).toMatch(/cannot reach node "cp1" over SSH/);
    for (const name of ['etcd', 'kube-scheduler', 'kube-controller-manager'])
      expect(c[name]).toEqual({ component: name, up: false, detail: 'node unreachable' });
    expect(c['kube-apiserver'].up).toBe(true);
    expect(r.certificates).toEqual([]);
    expect(r.problems).toHaveLength(4);
  });

  it('schedules health-<cluster> beside backup-<cluster>; a triggered run reports through the worker', async () => {
    const synced = await syncBackupSchedules(client, config);
    expect([...synced.created, ...synced.updated].sort()).toEqual(['backup-broken', 'backup-hc', 'health-broken', 'health-hc']);
    const schedule = client.schedule.getHandle('health-hc');
    const d = await schedule.describe();
    expect(d.spec.intervals?.[0]?.every).toBe(3_600_000);
    expect(d.action).toMatchObject({ workflowType: 'checkClusterHealth', workflowId: 'health-hc' });
    expect(d.policies.overlap).toBe('SKIP');
    await schedule.trigger();
    // The schedule names each run health-hc-<scheduled time>.
    const started = await waitFor(
      'the triggered health check',
      async () => (await schedule.describe()).info.recentActions[0]?.action.workflow,
      30_000,
      200,
    );
    expect(started.workflowId).toMatch(/^health-hc-/);
    const report = await client.workflow.getHandle<typeof checkClusterHealth>(started.workflowId, started.firstExecutionRunId).result();
    expect(report.components.every((c) => c.up)).toBe(true);
  });

  it("serves one metrics endpoint: the documented lifeboat_* series per cluster, recovery state from Temporal, and the runtime's metrics", async () => {
    // A backup that fails (plan: no such bucket) is counted by workflow code through the runtime's meter.
    await expect(runBackup(client, taskQueue, 'broken', `backup-broken-${Date.now()}`)).rejects.toBeInstanceOf(WorkflowFailedError);
    // A recovery waiting for approval is in progress; once rejected it is the last (unsuccessful) recovery.
    const recovery = await startRecovery(client, taskQueue, { cluster: 'hc', approval: 'required', reason: 'health test' });
    await waitFor(
      'the recovery to wait for approval',
      async () => (await recovery.query(progressQuery)).state === 'awaiting-approval',
      60_000,
      500,
    );
    await runHealthWorkflow(`health-hc-recovering-${Date.now()}`);
    let samples = parseExposition((await scrape(metricsAddress)).text);
    const value = (name: string, labels: Record<string, string> = { cluster: 'hc' }) =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    expect(value('lifeboat_recovery_in_progress')).toBe(1);
    expect(value('lifeboat_last_recovery_success')).toBeUndefined();

    await recovery.signal(rejectSignal, { by: 'health-test', reason: 'not needed' });
    await recovery.result();
    const before = Date.now() / 1000;
    await runHealthWorkflow(`health-hc-${Date.now()}`);
    const res = await scrape(metricsAddress);
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^text\/plain/);
    samples = parseExposition(res.text);

    for (const component of ['kube-apiserver', 'etcd', 'kube-scheduler', 'kube-controller-manager', 'node'])
      expect(value('lifeboat_component_up', { cluster: 'hc', component })).toBe(1);
    expect(value('lifeboat_etcd_has_leader')).toBe(1);
    expect(value('lifeboat_etcd_db_size_bytes')).toBeGreaterThan(100_000);
    expect(value('lifeboat_etcd_db_quota_bytes')).toBe(2 * 1024 ** 3);
    expect(value('lifeboat_etcd_data_dir_free_bytes')).toBeGreaterThan(0);
    const certificates = samples.filter((s) => s.name === 'lifeboat_certificate_expiry_timestamp_seconds' && s.labels.cluster === 'hc');
    expect(certificates).toHaveLength(14);
    expect(value('lifeboat_certificate_expiry_timestamp_seconds', { cluster: 'hc', certificate: 'apiserver' })).toBeGreaterThan(
      before + 363 * 86400,
    );
    expect(value('lifeboat_last_successful_backup_timestamp_seconds')).toBe(Date.parse(backup.created) / 1000);
    expect(value('lifeboat_last_successful_backup_size_bytes')).toBe(backup.storedBytes);
    expect(value('lifeboat_health_check_timestamp_seconds')).toBeGreaterThanOrEqual(Math.floor(before));
    expect(value('lifeboat_etcd_revision')).toBeGreaterThan(Number(backup.revision));
    expect(value('lifeboat_last_successful_backup_revision')).toBe(Number(backup.revision));
    // backup-hc from schedule sync: the default cron, every 6 h, each run moved by up to the 5 min jitter.
    expect(Math.abs(value('lifeboat_backup_interval_seconds')! - 6 * 3600)).toBeLessThanOrEqual(300);
    expect(value('lifeboat_recovery_in_progress')).toBe(0);
    expect(value('lifeboat_last_recovery_success')).toBe(0); // rejected: not a restore
    expect(value('lifeboat_last_recovery_duration_seconds')).toBeGreaterThan(0);
    expect(value('lifeboat_last_recovery_timestamp_seconds')).toBeGreaterThan(before - 120);

    // The Temporal runtime's own exporter, merged into the same scrape: SDK metrics and the workflow's counter.
    expect(samples.some((s) => s.name.startsWith('temporal_'))).toBe(true);
    const failed = samples.filter((s) => s.name.startsWith('lifeboat_backups_failed') && s.labels.cluster === 'broken');
    expect(failed).toEqual([expect.objectContaining({ labels: expect.objectContaining({ cluster: 'broken', step: 'plan' }), value: 1 })]);
    console.log(
      `runtime exports the failed-backup counter as: ${failed[0].name}{${Object.entries(failed[0].labels)
        .map(([k, v]) => `${k}="${v}"`)
        .join(',')}}`,
    );
    // One HELP/TYPE per family across both parts (Prometheus rejects a scrape that repeats one).
    const types = res.text
      .split('\n')
      .filter((l) => l.startsWith('# TYPE '))
      .map((l) => l.split(' ')[2]);
    expect(new Set(types).size).toBe(types.length);
  });
});
