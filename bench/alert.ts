import { startStaticPod, stopStaticPod, wipeControlPlane } from '../sandbox/disaster';
import type { Client } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KubeClient } from '../src/kube/client';
import { credentialsFromKubeconfig } from '../src/kube/kubeconfig';
import { startAlertmanager } from '../sandbox/alertmanager';
import { repoRoot } from '../src/devserver/binaries';
import { createSandboxCluster } from '../sandbox/cluster';
import { advanceRevision } from '../sandbox/fill';
import { freePort, waitFor } from '../src/devserver/processes';
import { startPrometheus } from '../sandbox/prometheus';
import { syncSchedules } from '../src/schedules/backup-schedules';
import type { RespondToAlertResult } from '../workflows/respond-to-alert';
import { benchEnv, startWorkerProcess } from './env';
import { backupCluster } from '../workflows';

/** The timings this bench runs with, printed with its figures: they decide detect and decide. */
const TIMINGS = { healthInterval: '5s', scrapeInterval: '5s', for: '15s', groupWait: '1s', confirmWindow: '10s', confirmProbes: 3 };
const NAME = 'alert';

async function runsOf(client: Client, workflowId: string): Promise<{ runId: string; startTime: Date; closeTime?: Date; status: string }[]> {
  const out: { runId: string; startTime: Date; closeTime?: Date; status: string }[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
    out.push({ runId: w.runId, startTime: w.startTime, closeTime: w.closeTime, status: w.status.name });
  return out.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
}

/**
 * The alert path end to end, timed: a sandbox control plane, the engine's worker as its own process (health
 * schedule, metrics endpoint, alert receiver), the shipped rules in a real Prometheus, a real Alertmanager. The
 * control plane is destroyed (processes killed, etcd's data wiped); the clock runs from then to the verified API,
 * split into detect (to the response's start, i.e. the first webhook POST that Temporal accepted), decide (confirm and
 * diagnose: to the recovery's start) and recover (to the recovery's verified end). Then a transient outage must
 * stand down without a recovery.
 */
async function main(): Promise<void> {
  const env = await benchEnv();
  const cluster = await createSandboxCluster({
    name: NAME,
    etcdLine: '3.6',
    withApiserver: true,
    storage: { bucket: 'bench', prefix: 'x', region: 'us-east-1', forcePathStyle: true },
    dir: join(env.dir, 'cluster'),
  });
  const node = cluster.controlPlane;
  const keyPath = join(env.dir, 'bench.key');
  await writeFile(keyPath, randomBytes(32).toString('base64'));
  const token = randomBytes(24).toString('hex');
  const tokenFile = join(env.dir, 'alerts.token');
  await writeFile(tokenFile, token, { mode: 0o600 });
  const metricsAddress = `127.0.0.1:${await freePort()}`;
  const alertsAddress = `127.0.0.1:${await freePort()}`;
  const tq = 'alert';
  const w = await startWorkerProcess(
    env,
    cluster,
    { encryptionKey: 'bench' },
    keyPath,
    tq,
    {
      recovery: { approval: 'required', onAlert: 'auto', confirm: { window: TIMINGS.confirmWindow, probes: TIMINGS.confirmProbes } },
      health: { interval: TIMINGS.healthInterval, timeout: '3s' },
    },
    {
      config: { alerts: { token: { file: tokenFile } } },
      env: { LIFEBOAT_METRICS_ADDRESS: metricsAddress, LIFEBOAT_ALERTS_ADDRESS: alertsAddress },
    },
  );
  const alertmanager = await startAlertmanager({
    dir: join(env.dir, 'alertmanager'),
    webhookUrl: `http://${alertsAddress}/alerts`,
    bearerTokenFile: tokenFile,
    groupWait: TIMINGS.groupWait,
  });
  const prometheus = await startPrometheus({
    dir: join(env.dir, 'prometheus'),
    scrapeTargets: [metricsAddress],
    scrapeInterval: TIMINGS.scrapeInterval,
    rulesFiles: [join(repoRoot, 'deploy/prometheus/lifeboat.rules.yml')],
    forOverride: TIMINGS.for,
    alertmanagerUrl: alertmanager.url,
  });
  const api = new KubeClient(credentialsFromKubeconfig(await readFile(node.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer));
  const names = async () =>
    (await api.list('/api/v1/namespaces/default/configmaps'))
      .map((c) => c.metadata.name)
      .filter((n) => !n.startsWith('kube-'))
      .sort();
  const firing = async () => (await prometheus.alerts()).filter((a) => a.state === 'firing' && a.labels.cluster === NAME);
  try {
    const { client } = env;
    // The worker's config file is what `schedule sync` reads in production; here the same schedules from the same config.
    const { parseConfig } = await import('../src/config/load');
    const { parse } = await import('yaml');
    await syncSchedules(client, parseConfig(parse(await readFile(join(env.dir, `${tq}.yaml`), 'utf8')), 'bench config'));
    for (const n of ['app-config', 'app-flags']) await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: n } });
    // A cluster in use is far past the few hundred revisions a fresh API server writes while it bootstraps.
    await advanceRevision(cluster, 3000);
    const backup = await client.workflow.execute(backupCluster, {
      taskQueue: tq,
      workflowId: 'bench-alert-backup',
      args: [{ cluster: NAME }],
    });
    await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'after-backup' } });
    console.log(`backup ${backup.snapshotKey} (revision ${backup.revision})`);
    await waitFor(
      'the first health check to record the backup',
      async () =>
        /lifeboat_last_successful_backup_revision\{cluster="alert"\} \d+/.test(
          await (await fetch(`http://${metricsAddress}/metrics`)).text(),
        ),
      60_000,
      500,
    );
    console.log(
      `timings: health probe every ${TIMINGS.healthInterval}, scrape and rule evaluation every ${TIMINGS.scrapeInterval}, for: ${TIMINGS.for}, group_wait ${TIMINGS.groupWait}, confirm ${TIMINGS.confirmProbes} probes over ${TIMINGS.confirmWindow}`,
    );

    // 1. Disaster: the control plane dies and etcd's data is wiped.
    const t0 = new Date();
    await wipeControlPlane(node);
    const response = await waitFor(
      'the response',
      async () => (await runsOf(client, `respond-${NAME}`)).find((r) => r.startTime >= t0),
      300_000,
      200,
    );
    const result = (await client.workflow.getHandle(`respond-${NAME}`, response.runId).result()) as RespondToAlertResult;
    const recovery = (await runsOf(client, `recover-${NAME}`))[0];
    if (result.outcome !== 'recovered' || !recovery?.closeTime)
      throw new Error(`expected a recovery, got ${result.outcome}: ${result.summary}`);
    const back = await names();
    if (!back.includes('app-config') || back.includes('after-backup'))
      throw new Error(`the API does not show the backup's objects: ${back.join(', ')}`);
    const detect = (response.startTime.getTime() - t0.getTime()) / 1000;
    const decide = (recovery.startTime.getTime() - response.startTime.getTime()) / 1000;
    const recover = (recovery.closeTime.getTime() - recovery.startTime.getTime()) / 1000;
    const total = (recovery.closeTime.getTime() - t0.getTime()) / 1000;
    console.log(`destroyed: diagnosis ${result.diagnosis?.cause}; objects back: ${back.join(', ')}`);
    await waitFor('the alerts to resolve', async () => (await firing()).length === 0, 180_000, 1000);

    // 2. A transient outage: the scheduler goes for long enough to alert, and is back before the confirm window ends.
    const t1 = new Date();
    await stopStaticPod(node, 'kube-scheduler');
    const transient = await waitFor(
      'the transient response',
      async () => (await runsOf(client, `respond-${NAME}`)).find((r) => r.startTime >= t1),
      300_000,
      200,
    );
    await startStaticPod(node, 'kube-scheduler', { sameBytes: true });
    const stood = (await client.workflow.getHandle(`respond-${NAME}`, transient.runId).result()) as RespondToAlertResult;
    const recoveries = (await runsOf(client, `recover-${NAME}`)).length;
    console.log(`transient scheduler outage: ${stood.outcome} (${stood.summary}); recoveries in all: ${recoveries}`);
    if (stood.outcome !== 'stood-down' || recoveries !== 1) throw new Error('the transient outage must stand down without a recovery');

    console.log(
      `alert: detect_s=${detect.toFixed(1)} decide_s=${decide.toFixed(1)} recover_s=${recover.toFixed(1)} total_s=${total.toFixed(1)}`,
    );
  } finally {
    for (const id of [`health-${NAME}`, `backup-${NAME}`])
      await env.client.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    await prometheus.stop();
    await alertmanager.stop();
    await w.proc.stop();
    await cluster.destroy();
    await env.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
