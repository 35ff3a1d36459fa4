import { startStaticPod, stopStaticPod, wipeControlPlane } from '../../sandbox/disaster';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startAlertReceiver, type AlertReceiver } from '../../src/alerts/receiver';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { startMetricsServer, type MetricsServer } from '../../src/metrics/server';
import { startAlertmanager, type AlertmanagerServer } from '../../sandbox/alertmanager';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { advanceRevision } from '../../sandbox/fill';
import { repoRoot } from '../../src/devserver/binaries';
import { waitFor } from '../../src/devserver/processes';
import { startPrometheus, type PrometheusServer } from '../../sandbox/prometheus';
import { syncSchedules } from '../../src/schedules/backup-schedules';
import type { RespondToAlertResult } from '../../workflows/respond-to-alert';
import type { RespondToAlertInput } from '../../workflows/response-input';
import { approveSignal, recoverCluster } from '../../workflows/recover-cluster';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { minioClient, minioStorage, testBed } from '../support/bed';
import { historyText } from '../support/history';
import { Worker } from '@temporalio/worker';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { workflowsPath } from '../../src/temporal/worker';
import { nodeFingerprint } from '../support/recovery';
import { startTestWorker, type RunningWorker } from '../support/worker';
import { progressQuery, responseQuery } from '../../workflows';

const BUCKET = 'alerting';
const NAME = 'alerting';
const TOKEN = 'alert-recovery-test-token-5f1c0e9a7b';
const NOTIFY_SECRET = 'T000-B000-notify-secret-9d2e';

/** Every run ever started under a workflow id, oldest first. */
async function runs(client: Client, workflowId: string): Promise<{ runId: string; status: string; startTime: Date }[]> {
  const out: { runId: string; status: string; startTime: Date }[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
    out.push({ runId: w.runId, status: w.status.name, startTime: w.startTime });
  return out.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
}

/**
 * The whole alert path on real servers: a sandbox control plane (etcd, kube-apiserver, scheduler, controller-manager
 * as static pods), the engine's worker with its health schedule (every 2 s) and metrics endpoint, the shipped rules
 * in a real Prometheus (scrape 1 s, `for:` shortened to 2 s), a real Alertmanager posting to the engine's receiver
 * with the bearer token. Each case breaks something and asserts exactly what the engine did: which response ran, how
 * it ended, whether a recovery ran, and what the cluster looks like through its API afterwards.
 */
describe('alert-triggered response: Prometheus -> Alertmanager -> receiver -> respondToAlert (real servers)', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let metrics: MetricsServer;
  let receiver: AlertReceiver;
  let alertmanager: AlertmanagerServer;
  let prometheus: PrometheusServer;
  let api: KubeClient;
  const s3 = minioClient();
  let clusterWith: (onAlert: string, cooldown?: string) => Record<string, unknown>;
  /** The same engine with another cluster policy: a new worker on the old one's queue, a new receiver on its address. */
  const restartWith = async (onAlert: string, cooldown?: string) => {
    const address = new URL(receiver.url).host;
    const taskQueue = worker.taskQueue;
    await receiver.close();
    await worker.stop();
    worker = await startTestWorker([clusterWith(onAlert, cooldown) as never], workerExtra, { taskQueue });
    receiver = await startAlertReceiver({
      config: worker.config,
      client: worker.client,
      taskQueue: worker.taskQueue,
      logger: pino({ level: 'silent' }),
      address,
    });
    await syncSchedules(worker.client, worker.config);
  };
  /** Kills every static pod's process and wipes etcd's data: etcd comes back empty. */
  const wipe = async () => {
    await wipeControlPlane(cluster.controlPlane);
  };
  let workerExtra: Record<string, unknown>;
  /** What the engine posted to the notification webhook (alerts.notify), in order. */
  const notifications: { event: string; text: string; raw: string }[] = [];
  let hook: Server;
  const names = async () =>
    (await api.list('/api/v1/namespaces/default/configmaps'))
      .map((c) => c.metadata.name)
      .filter((n) => !n.startsWith('kube-'))
      .sort();

  /** The response run started after `since`, once it has ended. */
  const nextResponse = async (since: Date, timeoutMs = 120_000): Promise<RespondToAlertResult> => {
    const deadline = Date.now() + timeoutMs;
    const passedOver = new Set<string>();
    for (;;) {
      const run = await waitFor(
        'a response run after the break',
        async () => (await runs(worker.client, `respond-${NAME}`)).find((r) => r.startTime >= since && !passedOver.has(r.runId)),
        Math.max(1000, deadline - Date.now()),
        500,
      );
      const handle = worker.client.workflow.getHandle(`respond-${NAME}`, run.runId);
      const result = await handle.result();
      // Alertmanager can re-send an alert of the previous case (its group changed as the others resolved) just after
      // `since`: the response it starts finds the cluster healthy and stands down. That one is not this case's.
      const started = (await handle.fetchHistory()).events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      const alertStart = started && defaultPayloadConverter.fromPayload<RespondToAlertInput>(started).alert.startsAt;
      if (result.outcome === 'stood-down' && alertStart && Date.parse(alertStart) < since.getTime()) {
        passedOver.add(run.runId);
        continue;
      }
      return result;
    }
  };
  const firing = async () =>
    (await prometheus.alerts())
      .filter((a) => a.state === 'firing' && a.labels.cluster === NAME)
      .map((a) => `${a.labels.alertname}${a.labels.component ? `/${a.labels.component}` : ''}`);
  /** Puts kube-scheduler's manifest back if a test moved it aside (also when that test failed half way). */
  const schedulerBack = () => startStaticPod(cluster.controlPlane, 'kube-scheduler', { sameBytes: true });
  afterEach(async () => {
    await schedulerBack().catch(() => undefined);
  });
  const quiet = () => waitFor('every alert of the cluster to resolve', async () => (await firing()).length === 0, 90_000, 500);

  beforeAll(async () => {
    const key = await keyFile();
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-alerting-'));
    cluster = await createSandboxCluster({ name: NAME, etcdLine: '3.6', withApiserver: true, storage: minioStorage(BUCKET) });
    api = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    process.env.LIFEBOAT_TEST_ALERTS_TOKEN = TOKEN;
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, TOKEN, { mode: 0o600 });
    clusterWith = (onAlert: string, cooldown = '30m') => ({
      ...withBackup(cluster, { encryptionKey: 'k1' }),
      recovery: { approval: 'required', onAlert, confirm: { window: '6s', probes: 3 }, cooldown },
      health: { interval: '2s', timeout: '3s' },
    });
    workerExtra = {
      encryptionKeys: { k1: { file: key.path } },
      alerts: { token: { env: 'LIFEBOAT_TEST_ALERTS_TOKEN' }, notify: { url: { env: 'LIFEBOAT_TEST_NOTIFY_URL' } } },
    };
    const config = {
      ...clusterWith('auto'),
    };
    hook = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        const body = JSON.parse(raw) as { text: string; lifeboat: { event: string } };
        notifications.push({ event: body.lifeboat.event, text: body.text, raw: raw + (req.url ?? '') });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    // The URL carries a secret, as Slack's does: it must never show up in what the engine writes anywhere.
    process.env.LIFEBOAT_TEST_NOTIFY_URL = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook/${NOTIFY_SECRET}`;
    worker = await startTestWorker([config as never], workerExtra);
    metrics = (await startMetricsServer('127.0.0.1:0'))!;
    receiver = await startAlertReceiver({
      config: worker.config,
      client: worker.client,
      taskQueue: worker.taskQueue,
      logger: pino({ level: 'silent' }),
      address: '127.0.0.1:0',
    });
    alertmanager = await startAlertmanager({ dir: join(dir, 'alertmanager'), webhookUrl: receiver.url, bearerTokenFile: tokenFile });
    prometheus = await startPrometheus({
      dir: join(dir, 'prometheus'),
      scrapeTargets: [metrics.address],
      rulesFiles: [join(repoRoot, 'deploy/prometheus/lifeboat.rules.yml')],
      forOverride: '2s',
      alertmanagerUrl: alertmanager.url,
    });
    await syncSchedules(worker.client, worker.config);
    await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'before-backup' } });
    // A cluster in use is far past the few hundred revisions a fresh API server writes while it bootstraps.
    await advanceRevision(cluster, 3000);
    await runBackup(worker.client, worker.taskQueue, NAME);
    await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'after-backup' } });
    // A healthy cluster: probes say so, and nothing fires.
    await waitFor(
      'a health check with every component up',
      async () => {
        const text = await (await fetch(`http://${metrics.address}/metrics`)).text();
        return (
          /lifeboat_component_up\{cluster="alerting",component="kube-scheduler"\} 1/.test(text) &&
          /lifeboat_last_successful_backup_revision\{cluster="alerting"\} \d+/.test(text)
        );
      },
      60_000,
      500,
    );
  });
  afterAll(async () => {
    // Each step on its own: a failure in one (a worker already stopped by a failed test) must not leave the sandbox,
    // Prometheus or Alertmanager running, which would keep jest from exiting.
    const steps: (() => Promise<unknown> | undefined)[] = [
      ...[`health-${NAME}`, `backup-${NAME}`].map((id) => () => worker?.client.schedule.getHandle(id).delete()),
      () => prometheus?.stop(),
      () => alertmanager?.stop(),
      () => receiver?.close(),
      () => metrics?.close(),
      () => worker?.stop(),
      () => cluster?.destroy(),
      async () => hook?.close(),
      async () => s3.destroy(),
    ];
    for (const step of steps) await Promise.resolve(step()).catch(() => undefined);
  });

  it('only kube-scheduler stopped: the alert is confirmed, diagnosed as not a restore case, and nothing is restored', async () => {
    const node = cluster.controlPlane;
    const before = await nodeFingerprint(node);
    const since = new Date();
    await stopStaticPod(node, 'kube-scheduler');
    const result = await nextResponse(since);
    expect(result.outcome).toBe('no-restore');
    expect(result.diagnosis).toMatchObject({ cause: 'components-down', verdict: 'no-restore' });
    expect(result.evidence.every((e) => e.down.includes('kube-scheduler'))).toBe(true);
    expect(await runs(worker.client, `recover-${NAME}`)).toEqual([]);
    expect(notifications.at(-1)).toMatchObject({
      event: 'no-restore',
      text: expect.stringMatching(/^lifeboat \[alerting\] no-restore: .*kube-scheduler/),
    });
    await schedulerBack();
    expect(await nodeFingerprint(node)).toBe(before);
    await quiet();
  });

  it('a component that comes back within the confirm window: the response stands down and changes nothing', async () => {
    const node = cluster.controlPlane;
    const since = new Date();
    await stopStaticPod(node, 'kube-scheduler');
    // As soon as the response has taken its first probe, the scheduler comes back.
    const run = await waitFor(
      'the response to start',
      async () => (await runs(worker.client, `respond-${NAME}`)).find((r) => r.startTime >= since),
      90_000,
      200,
    );
    await waitFor(
      'its first probe',
      async () => {
        const p = await worker.client.workflow.getHandle(`respond-${NAME}`, run.runId).query(responseQuery);
        return p.evidence.length > 0;
      },
      30_000,
      200,
    );
    // Put back as a new pod (the same bytes could revive the stopped pod in crash back-off, longer than the 6 s window).
    await startStaticPod(node, 'kube-scheduler');
    const result = await worker.client.workflow.getHandle(`respond-${NAME}`, run.runId).result();
    expect(result.outcome).toBe('stood-down');
    expect(result.diagnosis).toBeUndefined();
    expect(await runs(worker.client, `recover-${NAME}`)).toEqual([]);
    await quiet();
  });

  it('control plane destroyed (processes killed, etcd data wiped): alert -> response -> recovery (policy auto) -> API verified -> alert resolved', async () => {
    const node = cluster.controlPlane;
    const since = new Date();
    const pods = await node.pods();
    await node.exec([
      'bash',
      '-c',
      `kill -9 ${pods
        .flatMap((p) => p.containers.map((c) => c.pid))
        .filter(Boolean)
        .join(' ')}; rm -rf /var/lib/etcd/member`,
    ]);
    const result = await nextResponse(since, 180_000);
    expect(result.diagnosis).toMatchObject({ cause: 'etcd-data-lost', verdict: 'restore-in-place' });
    expect(result.outcome).toBe('recovered');
    expect(result.recovery).toMatchObject({ workflowId: `recover-${NAME}`, outcome: 'restored' });
    // Exactly one recovery ran, and the objects are those of the backup.
    expect((await runs(worker.client, `recover-${NAME}`)).map((r) => r.status)).toEqual(['COMPLETED']);
    expect(await names()).toEqual(['before-backup']);
    // The emptied data dir was kept aside, not deleted.
    expect(await node.exec(['bash', '-c', 'ls -d /var/lib/etcd.before-*'])).toMatch(/etcd\.before-/);
    await quiet();
    // Later responses (alerts still in flight when it ended) find a healthy cluster and stand down.
    for (const r of (await runs(worker.client, `respond-${NAME}`))
      .filter((r) => r.startTime > since && r.status === 'COMPLETED')
      .slice(1)) {
      const later = await worker.client.workflow.getHandle(`respond-${NAME}`, r.runId).result();
      expect(later.outcome).toBe('stood-down');
    }
    expect(await runs(worker.client, `recover-${NAME}`)).toHaveLength(1);
    const events = notifications.map((n) => n.event);
    expect(events.slice(events.indexOf('recovery-started'))).toEqual(expect.arrayContaining(['recovery-started', 'recovered']));
    // Neither the webhook's secret nor the alert token reaches a notification or the response's history.
    for (const n of notifications) expect(n.text).not.toMatch(new RegExp(`${NOTIFY_SECRET}|${TOKEN}`));
    const response = (await runs(worker.client, `respond-${NAME}`)).find((r) => r.startTime >= since)!;
    const history = await worker.client.workflow.getHandle(`respond-${NAME}`, response.runId).fetchHistory();
    expect(historyText(history)).not.toMatch(new RegExp(`${NOTIFY_SECRET}|${TOKEN}`));
    // The response (with its child recovery) replays against the current workflow code; LIFEBOAT_RECORD_HISTORIES=<dir>
    // keeps it as a fixture for test/unit/replay.test.ts.
    const errors: string[] = [];
    for await (const r of Worker.runReplayHistories({ workflowsPath }, [{ workflowId: `respond-${NAME}`, history }]))
      if (r.error) errors.push(String(r.error));
    expect(errors).toEqual([]);
    const out = process.env.LIFEBOAT_RECORD_HISTORIES;
    if (out) {
      const { stdout } = await promisify(execFile)(
        cluster.binaries.temporal,
        ['workflow', 'show', '-w', `respond-${NAME}`, '-r', response.runId, '--output', 'json', '--address', testBed().temporalAddress],
        { maxBuffer: 64 << 20 },
      );
      await writeFile(join(out, 'respond-0.json'), stdout);
    }
  });
  it('policy approve: the recovery waits for a person, changes nothing meanwhile, and restores once approved', async () => {
    // onAlert: approve; no cooldown here, so that this second disaster is a case for a recovery (see the next test).
    await restartWith('approve', '0s');
    await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'after-first-recovery' } });
    await runBackup(worker.client, worker.taskQueue, NAME);
    await waitFor(
      'a health check of the new backup',
      async () => {
        const text = await (await fetch(`http://${metrics.address}/metrics`)).text();
        return Number(/lifeboat_last_successful_backup_revision\{cluster="alerting"\} (\d+)/.exec(text)?.[1]) > 1_000_000_000;
      },
      60_000,
      500,
    );

    const node = cluster.controlPlane;
    const since = new Date();
    const recoveriesBefore = (await runs(worker.client, `recover-${NAME}`)).length;
    const asideDirs = () => node.exec(['bash', '-c', 'ls -d /var/lib/etcd.* 2>/dev/null | sort']);
    const asideBefore = await asideDirs();
    await wipe();
    const recovery = await waitFor(
      'a recovery waiting for approval',
      async () => {
        const run = (await runs(worker.client, `recover-${NAME}`)).find((r) => r.startTime >= since);
        const p = run && (await worker.client.workflow.getHandle(`recover-${NAME}`, run.runId).query(progressQuery));
        return p?.state === 'awaiting-approval' ? { run: run!, progress: p } : undefined;
      },
      120_000,
      500,
    );
    expect(recovery.progress.steps.find((s) => s.step === 'stop control plane')?.status).toBe('pending');
    expect(notifications.map((n) => n.event)).toContain('needs-approval');
    // While it waits, nothing on the node is touched: no data dir moved aside, no restore started.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await asideDirs()).toBe(asideBefore);
    expect((await worker.client.workflow.getHandle(`recover-${NAME}`, recovery.run.runId).query(progressQuery)).state).toBe(
      'awaiting-approval',
    );
    await worker.client.workflow
      .getHandle(`recover-${NAME}`, recovery.run.runId)
      .signal(approveSignal, { by: 'alice', reason: 'etcd wiped, approved in test' });
    const result = await nextResponse(since, 180_000);
    expect(result.outcome).toBe('recovered');
    expect(result.diagnosis?.cause).toBe('etcd-data-lost');
    expect(await runs(worker.client, `recover-${NAME}`)).toHaveLength(recoveriesBefore + 1);
    expect(await names()).toEqual(['after-first-recovery', 'before-backup']);
    await quiet();
  });
  it('within recovery.cooldown of a restore, an alert cannot restore again; a person can, explicitly', async () => {
    await restartWith('auto'); // the default cooldown, 30m: the last test's restore is minutes old
    await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'written-after-restore' } });
    const recoveriesBefore = (await runs(worker.client, `recover-${NAME}`)).length;
    const since = new Date();
    await wipe();
    const result = await nextResponse(since, 180_000);
    // With the response's whole account in the message, so that a failure here says what the response saw.
    if (result.diagnosis?.cause !== 'etcd-data-lost' || result.outcome !== 'recovery-failed')
      throw new Error(`expected recovery-failed for etcd-data-lost, the response returned ${JSON.stringify(result, null, 1)}`);
    expect(result.summary).toMatch(/was restored \d+ min ago .*within recovery\.cooldown.*overrideCooldown: true/);
    // The refused recovery stopped at its plan: nothing on the node was moved aside.
    const refused = (await runs(worker.client, `recover-${NAME}`)).slice(recoveriesBefore);
    expect(refused.map((r) => r.status)).toEqual(['FAILED']);
    const progress = await worker.client.workflow.getHandle(`recover-${NAME}`, refused[0].runId).query(progressQuery);
    expect(progress.steps.filter((s) => s.status !== 'pending' && s.status !== 'skipped').map((s) => `${s.step}:${s.status}`)).toEqual([
      'plan:failed',
    ]);
    // A person decides to restore anyway (`lifeboat restore alerting --override-cooldown --approve`).
    const restored = await worker.client.workflow.execute(recoverCluster, {
      taskQueue: worker.taskQueue,
      workflowId: `recover-${NAME}`,
      args: [{ cluster: NAME, approval: 'auto', overrideCooldown: true, reason: 'second disaster, restore anyway' }],
    });
    expect(restored.outcome).toBe('restored');
    expect(await names()).toEqual(['after-first-recovery', 'before-backup']);
    await quiet();
  });
});
