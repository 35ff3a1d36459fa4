import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { lifeboatDashboard } from '../../deploy/grafana/lifeboat-dashboard';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { etcdctlArgs } from '../../sandbox/control-plane';
import { startPrometheus, type PrometheusServer } from '../../sandbox/prometheus';
import { freePort, startProcess, waitFor, type ManagedProcess } from '../../src/devserver/processes';
import { checkClusterHealth } from '../../workflows';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { minioClient, minioStorage, testBed } from '../support/bed';
import { dashboardQueries, substituteVariables } from '../support/dashboard';

/**
 * The dashboard's queries against a real Prometheus that scraped a real worker (`lifeboat worker`, the compiled CLI,
 * with LIFEBOAT_METRICS_ADDRESS) after one real backup and one health check of a sandbox cluster: every panel's
 * PromQL, with Grafana's variables substituted, runs without error as an instant and as a range query, and the key
 * panels show the backup.
 */

const CLUSTER = 'dash';
const BUCKET = 'dash';

interface QueryResult {
  status: string;
  error?: string;
  data?: { resultType: string; result: unknown[] };
}

describe('Grafana dashboard queries against Prometheus scraping a real worker', () => {
  let cluster: SandboxCluster;
  let worker: ManagedProcess;
  let prometheus: PrometheusServer;
  let connection: Connection;
  let client: Client;
  let dir: string;
  const s3 = minioClient();

  const promql = async (expr: string, instant: boolean): Promise<QueryResult> => {
    const now = Date.now() / 1000;
    const params = new URLSearchParams(
      instant ? { query: expr, time: String(now) } : { query: expr, start: String(now - 300), end: String(now), step: '5' },
    );
    const res = await fetch(`${prometheus.url}/api/v1/${instant ? 'query' : 'query_range'}?${params.toString()}`);
    return (await res.json()) as QueryResult;
  };
  const vars = { cluster: CLUSTER, range: '1h', rateInterval: '1m' };

  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: CLUSTER, etcdLine: '3.6', withApiserver: false, storage: minioStorage(BUCKET) });
    // An empty etcd is refused as a backup: a few keys, as a cluster has.
    for (let i = 0; i < 5; i++)
      await cluster.controlPlane.exec(['etcdctl', ...etcdctlArgs(), 'put', `/registry/configmaps/default/cm-${i}`, `v${i}`]);
    const key = await keyFile();
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-dashboard-'));
    const taskQueue = `dashboard-${process.pid}-${Date.now()}`;
    const configFile = join(dir, 'config.yaml');
    await writeFile(
      configFile,
      stringify({
        temporal: { address: testBed().temporalAddress, taskQueue },
        encryptionKeys: { k1: { file: key.path } },
        clusters: [{ ...withBackup(cluster, { encryptionKey: 'k1' }), health: { interval: '1h', timeout: '5s' } }],
      }),
    );
    const metricsAddress = `127.0.0.1:${await freePort()}`;
    worker = startProcess('worker', 'node', [join(__dirname, '../../dist/src/cli/main.js'), '--config', configFile, 'worker'], {
      logFile: join(dir, 'worker.log'),
      env: { ...process.env, LOG_FORMAT: 'json', LIFEBOAT_METRICS_ADDRESS: metricsAddress },
    });
    await waitFor(
      `the worker's metrics at ${metricsAddress} (log: ${join(dir, 'worker.log')})`,
      async () => (await fetch(`http://${metricsAddress}/metrics`).catch(() => undefined))?.ok === true,
      60_000,
      300,
    );
    // No rules, so nothing is ever sent to the (absent) Alertmanager.
    prometheus = await startPrometheus({
      dir: join(dir, 'prometheus'),
      scrapeTargets: [metricsAddress],
      rulesFiles: [],
      alertmanagerUrl: 'http://127.0.0.1:9',
    });
    connection = await Connection.connect({ address: testBed().temporalAddress });
    client = new Client({ connection });
    await runBackup(client, taskQueue, CLUSTER);
    await client.workflow.execute(checkClusterHealth, {
      taskQueue,
      workflowId: `health-${CLUSTER}-${Date.now()}`,
      args: [{ cluster: CLUSTER }],
    });
    // Scraped every second: wait for the backup's counter and the health check's gauges to be in, twice (increase()).
    await waitFor(
      'Prometheus to have scraped the backup and the health check',
      async () =>
        (await prometheus.query(`count_over_time(lifeboat_last_successful_backup_timestamp_seconds{cluster="${CLUSTER}"}[1m]) >= 2`))
          .length === 1 &&
        (await prometheus.query(`count_over_time({__name__=~"lifeboat_backups_succeeded(_total)?", cluster="${CLUSTER}"}[1m]) >= 2`))
          .length === 1,
      60_000,
      500,
    );
  });

  afterAll(async () => {
    const steps: (() => Promise<unknown> | undefined)[] = [
      ...[`backup-${CLUSTER}`, `health-${CLUSTER}`].map((id) => () => client?.schedule.getHandle(id).delete()),
      () => prometheus?.stop(),
      () => worker?.stop(),
      () => connection?.close(),
      () => cluster?.destroy(),
      async () => s3.destroy(),
      () => (dir ? rm(dir, { recursive: true, force: true }) : undefined),
    ];
    for (const step of steps) await Promise.resolve(step()).catch(() => undefined);
  });

  it('every panel query runs without error, as an instant and as a range query', async () => {
    const queries = dashboardQueries(lifeboatDashboard());
    expect(queries.length).toBeGreaterThan(30);
    const failures: string[] = [];
    for (const q of queries) {
      const expr = substituteVariables(q.expr, vars);
      expect(expr).not.toMatch(/\$/); // every variable substituted
      for (const instant of [true, false]) {
        const r = await promql(expr, instant);
        if (r.status !== 'success') failures.push(`${q.panel} (${q.refId}, ${instant ? 'instant' : 'range'}): ${r.error}\n  ${expr}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('the key panels show the backup: its age, the count of backups and the steps’ durations', async () => {
    const byPanel = (title: string) => {
      const found = dashboardQueries(lifeboatDashboard()).filter((q) => q.panel === title);
      expect(found.length).toBeGreaterThan(0);
      return found;
    };
    const series = async (title: string, refId = 'A') => {
      const q = byPanel(title).find((x) => x.refId === refId)!;
      const r = await promql(substituteVariables(q.expr, vars), q.instant);
      expect(r.status).toBe('success');
      return r.data!.result as { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] }[];
    };
    const age = await series('Newest backup age');
    expect(age.map((s) => s.metric.cluster)).toEqual([CLUSTER]);
    expect(Number(age[0].value![1])).toBeGreaterThanOrEqual(0);
    expect(Number(age[0].value![1])).toBeLessThan(600);
    expect((await series('Backup age')).length).toBe(1);
    expect((await series('Backups per cluster')).map((s) => s.metric.cluster)).toEqual([CLUSTER]);
    expect((await series('Backups')).length).toBe(1);
    expect((await series('Recovery point now')).length).toBe(1);
    expect((await series('Sizes')).length).toBe(1);
    // The backup's steps, each a Temporal activity of backupCluster, with a mean duration.
    const steps = await series('Backup steps: mean duration (all clusters of the worker)');
    expect(steps.length).toBeGreaterThanOrEqual(3);
    for (const s of steps) expect(Number(s.value![1])).toBeGreaterThan(0);
    console.log(
      `backup steps on the dashboard: ${steps.map((s) => `${s.metric.activity_type} ${Math.round(Number(s.value![1]))} ms`).join(', ')}`,
    );
    expect((await series('Runs: mean duration (all clusters of the worker)')).map((s) => s.metric.workflow_type)).toEqual([
      'backupCluster',
    ]);
  });
});
