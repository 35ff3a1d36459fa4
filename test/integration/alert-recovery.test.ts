import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseDocument } from 'yaml';
import { startAlertReceiver, type AlertReceiver } from '../../src/alerts/receiver';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { startMetricsServer, type MetricsServer } from '../../src/metrics/server';
import { startAlertmanager, type AlertmanagerServer } from '../../src/sandbox/alertmanager';
import { createSandboxCluster, type SandboxCluster } from '../../src/sandbox/cluster';
import { advanceRevision } from '../../src/sandbox/fill';
import { repoRoot } from '../../src/sandbox/binaries';
import { waitFor } from '../../src/sandbox/processes';
import { startPrometheus, type PrometheusServer } from '../../src/sandbox/prometheus';
import { syncSchedules } from '../../src/schedules/backup-schedules';
import type { RespondToAlertResult } from '../../workflows/respond-to-alert';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { minioClient, minioStorage } from '../support/bed';
import { nodeFingerprint } from '../support/recovery';
import { startTestWorker, type RunningWorker } from '../support/worker';

const BUCKET = 'alerting';
const NAME = 'alerting';
const TOKEN = 'alert-recovery-test-token-5f1c0e9a7b';

/** Every run ever started under a workflow id, oldest first. */
async function runs(client: Client, workflowId: string): Promise<{ runId: string; status: string; startTime: Date }[]> {
  const out: { runId: string; status: string; startTime: Date }[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) out.push({ runId: w.runId, status: w.status.name, startTime: w.startTime });
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
  const names = async () => (await api.list('/api/v1/namespaces/default/configmaps')).map((c) => c.metadata.name).filter((n) => !n.startsWith('kube-')).sort();

  /** The response run started after `since`, once it has ended. */
  const nextResponse = async (since: Date, timeoutMs = 120_000): Promise<RespondToAlertResult> => {
    const run = await waitFor('a response run after the break', async () => (await runs(worker.client, `respond-${NAME}`)).find((r) => r.startTime >= since), timeoutMs, 500);
    return worker.client.workflow.getHandle(`respond-${NAME}`, run.runId).result();
  };
  const firing = async () => (await prometheus.alerts()).filter((a) => a.state === 'firing' && a.labels.cluster === NAME).map((a) => `${a.labels.alertname}${a.labels.component ? `/${a.labels.component}` : ''}`);
  const quiet = () => waitFor('every alert of the cluster to resolve', async () => (await firing()).length === 0, 90_000, 500);

  beforeAll(async () => {
    const key = await keyFile();
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-alerting-'));
    cluster = await createSandboxCluster({ name: NAME, etcdLine: '3.6', withApiserver: true, storage: minioStorage(BUCKET) });
    api = new KubeClient(credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer));
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    process.env.LIFEBOAT_TEST_ALERTS_TOKEN = TOKEN;
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, TOKEN, { mode: 0o600 });
    const config = {
      ...withBackup(cluster, { encryptionKey: 'k1' }),
      recovery: { approval: 'required', onAlert: 'auto', confirm: { window: '6s', probes: 3 } },
      health: { interval: '2s', timeout: '3s' },
    };
    worker = await startTestWorker([config as never], { encryptionKeys: { k1: { file: key.path } }, alerts: { token: { env: 'LIFEBOAT_TEST_ALERTS_TOKEN' } } });
    metrics = (await startMetricsServer('127.0.0.1:0'))!;
    receiver = await startAlertReceiver({ config: worker.config, client: worker.client, taskQueue: worker.taskQueue, logger: pino({ level: 'silent' }), address: '127.0.0.1:0' });
    alertmanager = await startAlertmanager({ dir: join(dir, 'alertmanager'), webhookUrl: receiver.url, bearerTokenFile: tokenFile });
    prometheus = await startPrometheus({ dir: join(dir, 'prometheus'), scrapeTargets: [metrics.address], rulesFiles: [join(repoRoot, 'deploy/prometheus/lifeboat.rules.yml')], forOverride: '2s', alertmanagerUrl: alertmanager.url });
    await syncSchedules(worker.client, worker.config);
    await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'before-backup' } });
    // A cluster in use is far past the few hundred revisions a fresh API server writes while it bootstraps.
    await advanceRevision(cluster, 3000);
    await runBackup(worker.client, worker.taskQueue, NAME);
    await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'after-backup' } });
    // A healthy cluster: probes say so, and nothing fires.
    await waitFor('a health check with every component up', async () => {
      const text = await (await fetch(`http://${metrics.address}/metrics`)).text();
      return /lifeboat_component_up\{cluster="alerting",component="kube-scheduler"\} 1/.test(text) && /lifeboat_last_successful_backup_revision\{cluster="alerting"\} \d+/.test(text);
    }, 60_000, 500);
  });
  afterAll(async () => {
    for (const id of [`health-${NAME}`, `backup-${NAME}`]) await worker?.client.schedule.getHandle(id).delete().catch(() => undefined);
    await prometheus?.stop();
    await alertmanager?.stop();
    await receiver?.close();
    await metrics?.close();
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  it('only kube-scheduler stopped: the alert is confirmed, diagnosed as not a restore case, and nothing is restored', async () => {
    const node = cluster.controlPlane;
    const before = await nodeFingerprint(node);
    const since = new Date();
    await node.exec(['mv', '/etc/kubernetes/manifests/kube-scheduler.yaml', '/var/lib/kube-scheduler.yaml.aside']);
    const result = await nextResponse(since);
    expect(result.outcome).toBe('no-restore');
    expect(result.diagnosis).toMatchObject({ cause: 'components-down', verdict: 'no-restore' });
    expect(result.evidence.every((e) => e.down.includes('kube-scheduler'))).toBe(true);
    expect(await runs(worker.client, `recover-${NAME}`)).toEqual([]);
    await node.exec(['mv', '/var/lib/kube-scheduler.yaml.aside', '/etc/kubernetes/manifests/kube-scheduler.yaml']);
    expect(await nodeFingerprint(node)).toBe(before);
    await quiet();
  });

  it('a component that comes back within the confirm window: the response stands down and changes nothing', async () => {
    const node = cluster.controlPlane;
    const since = new Date();
    await node.exec(['mv', '/etc/kubernetes/manifests/kube-scheduler.yaml', '/var/lib/kube-scheduler.yaml.aside']);
    // As soon as the response has taken its first probe, the scheduler comes back.
    const run = await waitFor('the response to start', async () => (await runs(worker.client, `respond-${NAME}`)).find((r) => r.startTime >= since), 90_000, 200);
    await waitFor('its first probe', async () => {
      const p = await worker.client.workflow.getHandle(`respond-${NAME}`, run.runId).query<{ evidence: unknown[] }>('response');
      return p.evidence.length > 0;
    }, 30_000, 200);
    // Put back as a new pod: the kubelet derives a static pod's UID from the manifest, and the same bytes again can
    // revive the stopped pod in crash back-off (~15 s), longer than the 6 s window. A changed annotation is what
    // an operator's edit (or a recovery's start step) gives it.
    const manifest = parseDocument(await readFile(node.path('/var/lib/kube-scheduler.yaml.aside'), 'utf8'));
    manifest.setIn(['metadata', 'annotations', 'test/re-added'], new Date().toISOString());
    await writeFile(node.path('/etc/kubernetes/manifests/.kube-scheduler.yaml.tmp'), manifest.toString(), { mode: 0o600 });
    await rename(node.path('/etc/kubernetes/manifests/.kube-scheduler.yaml.tmp'), node.path('/etc/kubernetes/manifests/kube-scheduler.yaml'));
    await rm(node.path('/var/lib/kube-scheduler.yaml.aside'));
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
    await node.exec(['bash', '-c', `kill -9 ${pods.flatMap((p) => p.containers.map((c) => c.pid)).filter(Boolean).join(' ')}; rm -rf /var/lib/etcd/member`]);
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
    for (const r of (await runs(worker.client, `respond-${NAME}`)).filter((r) => r.startTime > since && r.status === 'COMPLETED').slice(1)) {
      const later = await worker.client.workflow.getHandle(`respond-${NAME}`, r.runId).result();
      expect(later.outcome).toBe('stood-down');
    }
    expect(await runs(worker.client, `recover-${NAME}`)).toHaveLength(1);
  });
});
