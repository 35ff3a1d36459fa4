import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import pino from 'pino';
import { startAlertReceiver } from '../../src/alerts/receiver';
import { readManifest } from '../../src/backup/catalog';
import { waitFor } from '../../src/devserver/processes';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { parseConfig } from '../../src/config/load';
import { serverBinaries } from '../../src/devserver/binaries';
import { temporalTarget } from '../../src/temporal/connection';
import { OUTCOME } from '../../src/temporal/search-attributes';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { minioClient, minioStorage } from '../support/bed';
import { directModeOf, keyFile, runBackup, withBackup } from '../support/backups';
import { runCli } from '../support/cli';
import { drill, drillConfigFor } from '../support/drills';
import { startRecovery } from '../support/recovery';
import { registerNamespace, startTemporalOnPostgres, type TemporalOnPostgres } from '../support/temporal-postgres';
import { startTestWorker, type RunningWorker } from '../support/worker';

const BUCKET = 'lifeboat-pg';
const execFileP = promisify(execFile);
const TOKEN = 'pg-alert-token-0123456789abcdef0123';

/** Polls SQL visibility (written asynchronously) until the query returns `count` runs. */
async function listUntil(client: Client, query: string, count: number): Promise<WorkflowExecutionInfo[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const runs: WorkflowExecutionInfo[] = [];
    for await (const w of client.workflow.list({ query })) runs.push(w);
    if (runs.length >= count || Date.now() > deadline) return runs;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * The engine against a real Temporal server (v1.29.1, the compose file's) on PostgreSQL, set up the documented way
 * (test/support/temporal-postgres.ts), instead of the dev server every other file shares: the namespace preparation
 * commands, search attributes on SQL visibility, and each kind of run once, by a real worker, against a sandbox control
 * plane (etcd 3.5, kube-apiserver, scheduler, controller-manager): a backup, a drill, an alert's response and a
 * recovery, the recovery across a PostgreSQL restart.
 */
describe('a real Temporal server on PostgreSQL', () => {
  let temporal: TemporalOnPostgres;
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let api: KubeClient;
  const s3 = minioClient();
  const configMaps = async () =>
    (await api.list('/api/v1/namespaces/default/configmaps'))
      .map((c) => c.metadata.name)
      .filter((n) => !n.startsWith('kube-'))
      .sort();
  const env = () => ({ TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: 'default' });

  beforeAll(async () => {
    const key = await keyFile();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    // The server and the sandbox come up side by side; each is kept as soon as it is up, so afterAll stops it even if
    // the other failed.
    const [server, sandbox] = await Promise.allSettled([
      startTemporalOnPostgres().then((t) => (temporal = t)),
      createSandboxCluster({ name: 'pg', etcdLine: '3.5', withApiserver: true, storage: minioStorage(BUCKET) }).then((c) => (cluster = c)),
    ]);
    for (const r of [server, sandbox]) if (r.status === 'rejected') throw r.reason;
    api = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
    await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'before-backup' }, data: { at: 'backup' } });
    // Direct mode, the cheapest real backup: the worker streams etcd's snapshot with its own etcdctl.
    const config = withBackup(cluster, { encryptionKey: 'k1', compression: 'none' });
    const direct = await directModeOf(cluster, '3.5');
    const target = await temporalTarget(parseConfig({ temporal: { address: temporal.address } }, 'test config'), {});
    process.env.LIFEBOAT_TEST_PG_ALERT_TOKEN = TOKEN;
    worker = await startTestWorker(
      [
        {
          ...config,
          etcd: { ...config.etcd, direct },
          recovery: { ...config.recovery, onAlert: 'auto', confirm: { window: '4s', probes: 2 } },
          health: { interval: '2s', timeout: '3s' },
        },
      ],
      {
        encryptionKeys: { k1: { file: key.path } },
        alerts: { token: { env: 'LIFEBOAT_TEST_PG_ALERT_TOKEN' } },
        // Drills restore on the worker with etcd's own tools of the cluster's version, and count through an API server.
        drill: await drillConfigFor('pg', ['3.5']),
      },
      { target },
    );
  });
  afterAll(async () => {
    await worker?.stop();
    await Promise.all([cluster?.destroy(), temporal?.stop()]);
    s3.destroy();
  });

  it('`lifeboat temporal check` names what a fresh namespace lacks and the command that fixes it; after `temporal setup` it passes', async () => {
    const fresh = await runCli(['temporal', 'check'], { env: env() });
    expect(fresh.code).toBe(1);
    expect(fresh.stdout).toMatch(/^server: +Temporal 1\.29\.1$/m);
    expect(fresh.stdout).toMatch(/search attributes: 0\/3 present/);
    for (const name of ['LifeboatCluster', 'LifeboatRun', 'LifeboatOutcome']) expect(fresh.stdout).toContain(`missing ${name}`);
    expect(fresh.stdout).toContain('register them with `lifeboat temporal setup`');

    const setup = await runCli(['temporal', 'setup'], { env: env() });
    expect(setup.code).toBe(0);
    expect(setup.stdout.trim().split('\n').sort()).toEqual([
      'added    LifeboatCluster (Keyword)',
      'added    LifeboatOutcome (Keyword)',
      'added    LifeboatRun (Keyword)',
    ]);
    const check = await runCli(['temporal', 'check'], { env: env() });
    expect(check.stdout).toMatch(/search attributes: 3\/3 present/);
    expect(check.code).toBe(0);
  });

  it('a backup run by a real worker lands in the bucket, and SQL visibility finds it with the filters the UI sends', async () => {
    const result = await runBackup(worker.client, worker.taskQueue, 'pg');
    expect(result.manifestKey).toMatch(/\.json$/);
    // Direct mode with a whole control plane: the version comes from the manifest the archive step read.
    expect((await readManifest(s3, BUCKET, result.manifestKey)).kubernetesVersion).toMatch(/^v1\.34\./);
    const found = await listUntil(worker.client, `LifeboatCluster = "pg" AND LifeboatRun = "backup" AND ExecutionStatus = "Completed"`, 1);
    expect(found).toHaveLength(1);
    expect(found[0].type).toBe('backupCluster');
    expect(found[0].typedSearchAttributes.get(OUTCOME)).toBe('succeeded');
    // The UI's own filters: a workflow type, and a custom attribute that matches nothing.
    expect(await listUntil(worker.client, `WorkflowType = "backupCluster" AND LifeboatCluster = "pg"`, 1)).toHaveLength(1);
    expect(await listUntil(worker.client, `LifeboatCluster = "no-such-cluster"`, 0)).toEqual([]);
  });

  it('a second namespace registered later lacks the attributes until it is set up, and one registered with another type is named with the command that fixes it', async () => {
    const { temporal: cli } = await serverBinaries();
    await registerNamespace(cli, temporal.address, 'team-b');
    const teamB = { ...env(), TEMPORAL_NAMESPACE: 'team-b' };
    const other = await runCli(['temporal', 'check'], { env: teamB });
    expect(other.code).toBe(1);
    expect(other.stdout).toMatch(/^namespace: team-b /m);
    expect(other.stdout).toContain('missing LifeboatCluster');
    expect((await runCli(['temporal', 'check'], { env: env() })).code).toBe(0);

    // Someone registered LifeboatRun by hand as Text: `setup` cannot fix that by adding, so both say how.
    const temporalCli = (...args: string[]) => execFileP(cli, [...args, '--namespace', 'team-b', '--address', temporal.address]);
    await temporalCli('operator', 'search-attribute', 'create', '--name', 'LifeboatRun', '--type', 'Text');
    const remove = 'temporal operator search-attribute remove --name LifeboatRun --namespace team-b --yes';
    const setup = await runCli(['temporal', 'setup'], { env: teamB });
    expect(setup.code).toBe(1);
    expect(setup.stdout).toContain(`WRONG    LifeboatRun is registered with type text, not Keyword`);
    expect(setup.stdout).toContain(remove);
    const wrong = await runCli(['temporal', 'check'], { env: teamB });
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/search attributes: 2\/3 present/);
    expect(wrong.stdout).toContain('LifeboatRun is text, lifeboat needs keyword');
    expect(wrong.stdout).toContain(remove);
    // The printed command, as printed, then setup again: the namespace is ready.
    const [, ...args] = remove.split(' ');
    await execFileP(cli, [...args, '--address', temporal.address]);
    await waitFor(
      'LifeboatRun gone from team-b',
      async () => !(await runCli(['temporal', 'check'], { env: teamB })).stdout.includes('LifeboatRun is text'),
      30_000,
      1_000,
    );
    expect((await runCli(['temporal', 'setup'], { env: teamB })).code).toBe(0);
    expect((await runCli(['temporal', 'check'], { env: teamB })).code).toBe(0);
  });

  it('a drill of that backup restores it on the worker and counts its objects through an API server', async () => {
    const result = await drill(worker.client, worker.taskQueue, { cluster: 'pg' });
    expect(result.result).toBe('passed');
    expect(result.countedThrough).toBe('api');
    expect(result.counts.matched.map((c) => c.resource)).toContain('configmaps');
    expect(
      await listUntil(worker.client, `LifeboatCluster = "pg" AND LifeboatRun = "drill" AND LifeboatOutcome = "passed"`, 1),
    ).toHaveLength(1);
  });

  it('an alert for the healthy cluster, through the receiver: its response probes, finds it healthy and stands down', async () => {
    const receiver = await startAlertReceiver({
      config: worker.config,
      client: worker.client,
      taskQueue: worker.taskQueue,
      logger: pino({ level: 'silent' }),
      address: '127.0.0.1:0',
    });
    try {
      const res = await fetch(receiver.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({
          version: '4',
          status: 'firing',
          receiver: 'lifeboat',
          groupKey: '{}:{alertname="KubeAPIDown"}',
          alerts: [
            {
              status: 'firing',
              labels: { alertname: 'KubeAPIDown', cluster: 'pg', severity: 'critical' },
              annotations: {},
              startsAt: new Date().toISOString(),
              endsAt: '0001-01-01T00:00:00Z',
              fingerprint: '0123456789abcdef',
            },
          ],
        }),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { accepted?: string[] }).accepted).toHaveLength(1);
    } finally {
      await receiver.close();
    }
    const response = await worker.client.workflow.getHandle('respond-pg').result();
    expect(response.outcome).toBe('stood-down');
    expect(await listUntil(worker.client, `LifeboatCluster = "pg" AND LifeboatRun = "response"`, 1)).toHaveLength(1);
  });

  it('a recovery finishes though PostgreSQL restarts under it mid-restore: what the backup held is back, what came after is not', async () => {
    await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'after-backup' } });
    expect(await configMaps()).toEqual(['after-backup', 'before-backup']);
    const handle = await startRecovery(worker.client, worker.taskQueue, {
      cluster: 'pg',
      approval: 'auto',
      controlPlaneTimeoutSeconds: 180,
    });
    // Restarted while the restore step runs on the node: its heartbeats, the step's completion and the next workflow
    // task all meet a server whose database is gone for a while.
    await waitFor(
      'the restore step to start',
      async () =>
        (await handle.fetchHistory()).events?.some(
          (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'restoreEtcdData',
        ) ?? false,
      120_000,
      200,
    );
    await temporal.restartPostgres(8_000);
    const result = await handle.result();
    expect(result.outcome).toBe('restored');
    expect(await configMaps()).toEqual(['before-backup']);
    expect(
      await listUntil(worker.client, `LifeboatCluster = "pg" AND LifeboatRun = "recovery" AND ExecutionStatus = "Completed"`, 1),
    ).toHaveLength(1);
  });
});
