import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startAlertmanager, type AlertmanagerServer } from '../../sandbox/alertmanager';
import { startPrometheus, type PrometheusServer } from '../../sandbox/prometheus';
import { freePort, waitFor, type ManagedProcess } from '../../src/devserver/processes';
import { workerProcess } from '../support/worker-process';

/**
 * The Prometheus + Alertmanager test bed end to end. First without the engine: a tiny exporter stands in for the
 * worker's metrics, the shipped rules run with `for: 2s`, and a tiny webhook server stands in for lifeboat's alert
 * receiver. Then with the engine's real worker process, killed, to prove the rules on the scrape itself fire.
 */

const rulesFile = resolve(__dirname, '..', '..', 'deploy', 'prometheus', 'lifeboat.rules.yml');
const FOR = '2s';

interface Notification {
  receivedAt: number;
  authorization: string | undefined;
  body: {
    version: string;
    status: 'firing' | 'resolved';
    groupLabels: Record<string, string>;
    alerts: {
      status: string;
      labels: Record<string, string>;
      annotations: Record<string, string>;
      startsAt: string;
      endsAt: string;
      fingerprint: string;
    }[];
  };
}

function listen(server: Server): Promise<number> {
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok((server.address() as AddressInfo).port)));
}

function close(server: Server): Promise<void> {
  return new Promise((ok) => {
    server.closeAllConnections();
    server.close(() => ok());
  });
}

describe('Prometheus and Alertmanager harness (real servers, shipped rules, no engine)', () => {
  let dir: string;
  let up = 1;
  let scrapesOfZero = 0;
  const notifications: Notification[] = [];
  const token = randomBytes(24).toString('hex');
  let exporter: Server;
  let webhook: Server;
  let alertmanager: AlertmanagerServer | undefined;
  let prometheus: PrometheusServer | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-prom-am-'));
    exporter = createServer((req, res) => {
      if (up === 0) scrapesOfZero += 1;
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(
        '# HELP lifeboat_component_up Whether the component answered its last health check.\n' +
          '# TYPE lifeboat_component_up gauge\n' +
          `lifeboat_component_up{cluster="t1",component="etcd"} ${up}\n` +
          // As the worker does from its start: without it the engine-absent rule would fire here.
          '# TYPE lifeboat_build_info gauge\n' +
          'lifeboat_build_info{version="test"} 1\n',
      );
    });
    webhook = createServer((req, res) => {
      const receivedAt = Date.now();
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        notifications.push({
          receivedAt,
          authorization: req.headers.authorization,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        });
        res.writeHead(200).end();
      });
    });
    const [exporterPort, webhookPort] = await Promise.all([listen(exporter), listen(webhook)]);
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, token, { mode: 0o600 });
    alertmanager = await startAlertmanager({
      dir: join(dir, 'alertmanager'),
      webhookUrl: `http://127.0.0.1:${webhookPort}/alerts`,
      bearerTokenFile: tokenFile,
    });
    prometheus = await startPrometheus({
      dir: join(dir, 'prometheus'),
      scrapeTargets: [`127.0.0.1:${exporterPort}`],
      rulesFiles: [rulesFile],
      forOverride: FOR,
      alertmanagerUrl: alertmanager.url,
    });
    // The first scrape is in before the tests flip anything.
    await waitFor(
      'the first scrape',
      async () => (await prometheus!.query('lifeboat_component_up{cluster="t1"} == 1')).length === 1,
      30_000,
      100,
    );
  }, 120_000);

  afterAll(async () => {
    await prometheus?.stop();
    await alertmanager?.stop();
    await Promise.all([exporter && close(exporter), webhook && close(webhook)]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('loads the shipped rules with `for` overridden', async () => {
    const res = await fetch(`${prometheus!.url}/api/v1/rules`);
    const { data } = (await res.json()) as { data: { groups: { rules: { name: string; duration: number }[] }[] } };
    const rules = data.groups.flatMap((g) => g.rules);
    expect(rules.find((r) => r.name === 'LifeboatControlPlaneComponentDown')?.duration).toBe(2);
    expect(rules.find((r) => r.name === 'LifeboatEtcdNoLeader')?.duration).toBe(2);
    expect(rules.find((r) => r.name === 'LifeboatHealthCheckStale')?.duration).toBe(0); // had no `for`: untouched
  });

  it('a component down for less than `for` gives no notification', async () => {
    up = 0;
    // Flip back as soon as Prometheus has seen the 0 and put the alert into pending: it never reaches `for`.
    await waitFor(
      'the alert to be pending',
      async () =>
        (await prometheus!.alerts()).some((a) => a.labels.alertname === 'LifeboatControlPlaneComponentDown' && a.state === 'pending'),
      15_000,
      50,
    );
    up = 1;
    const flapScrapes = scrapesOfZero;
    await waitFor(
      'the component to be up again',
      async () => (await prometheus!.query('lifeboat_component_up{cluster="t1"} == 1')).length === 1,
      15_000,
      50,
    );
    await waitFor(
      'the alert to be gone',
      async () => !(await prometheus!.alerts()).some((a) => a.labels.alertname === 'LifeboatControlPlaneComponentDown'),
      15_000,
      50,
    );
    // A real outage notifies within ~6 s (the next test); wait longer than that.
    await new Promise((r) => setTimeout(r, 8_000));
    expect(flapScrapes).toBeGreaterThanOrEqual(1);
    expect(flapScrapes).toBeLessThanOrEqual(2);
    expect((await prometheus!.query('min_over_time(lifeboat_component_up{cluster="t1"}[1m]) == 0')).length).toBe(1);
    expect(notifications).toEqual([]);
  }, 60_000);

  it('a component down for longer than `for` notifies firing with the bearer token and payload v4, then resolved', async () => {
    const downAt = Date.now();
    up = 0;
    const firing = await waitFor(
      'the firing notification',
      async () =>
        notifications.find(
          (n) => n.body.status === 'firing' && n.body.alerts.some((a) => a.labels.alertname === 'LifeboatControlPlaneComponentDown'),
        ),
      60_000,
      50,
    );
    const firingAfterMs = firing.receivedAt - downAt;
    expect(firing.authorization).toBe(`Bearer ${token}`);
    expect(firing.body.version).toBe('4');
    expect(firing.body.groupLabels).toEqual({ alertname: 'LifeboatControlPlaneComponentDown', cluster: 't1' });
    expect(firing.body.alerts).toHaveLength(1);
    const [alert] = firing.body.alerts;
    expect(alert.status).toBe('firing');
    expect(alert.labels).toMatchObject({
      alertname: 'LifeboatControlPlaneComponentDown',
      cluster: 't1',
      component: 'etcd',
      severity: 'critical',
    });
    expect(alert.annotations.summary).toBe('etcd of cluster t1 is down');
    expect(alert.annotations.runbook_url).toBe('https://github.com/lifeboat-dr/lifeboat/blob/main/docs/alerts.md');

    const backAt = Date.now();
    up = 1;
    const resolved = await waitFor(
      'the resolved notification',
      async () => notifications.find((n) => n.body.status === 'resolved'),
      60_000,
      50,
    );
    const resolvedAfterMs = resolved.receivedAt - backAt;
    expect(resolved.authorization).toBe(`Bearer ${token}`);
    expect(resolved.body.alerts[0].status).toBe('resolved');
    expect(resolved.body.alerts[0].fingerprint).toBe(alert.fingerprint);
    expect(resolved.body.alerts[0].startsAt).toBe(alert.startsAt);

    console.log(
      `component down -> firing webhook POST: ${firingAfterMs} ms (for ${FOR}, scrape/eval 1s, group_wait 1s); back up -> resolved POST: ${resolvedAfterMs} ms`,
    );
    expect(firingAfterMs).toBeLessThan(30_000);
  }, 120_000);
});

describe('who watches the watcher: the real worker killed under Prometheus and Alertmanager', () => {
  let dir: string;
  const notifications: Notification['body'][] = [];
  let webhook: Server;
  let worker: ManagedProcess | undefined;
  let metricsAddress: string;
  let alertmanager: AlertmanagerServer | undefined;
  let prometheus: PrometheusServer | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-prom-engine-'));
    webhook = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        notifications.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(200).end();
      });
    });
    const webhookPort = await listen(webhook);
    // `lifeboat worker` as users run it, with no cluster: what is under test is only that it is scraped, then not.
    const { launch } = await workerProcess('watched', undefined, undefined);
    metricsAddress = `127.0.0.1:${await freePort()}`;
    worker = launch({ LIFEBOAT_METRICS_ADDRESS: metricsAddress });
    alertmanager = await startAlertmanager({ dir: join(dir, 'alertmanager'), webhookUrl: `http://127.0.0.1:${webhookPort}/alerts` });
    // The shipped file with `for:` shortened in Prometheus's copy only (5m and 10m stay in deploy/prometheus; the
    // unit test alert-rules.test.ts holds them there). The scrape job is named `lifeboat`, as docs/alerts.md says.
    prometheus = await startPrometheus({
      dir: join(dir, 'prometheus'),
      scrapeTargets: [metricsAddress],
      rulesFiles: [rulesFile],
      forOverride: FOR,
      alertmanagerUrl: alertmanager.url,
    });
    await waitFor(
      'the worker to be scraped',
      async () => (await prometheus!.query('lifeboat_build_info{job="lifeboat"} == 1 and on (instance) up == 1')).length === 1,
      60_000,
      200,
    );
  }, 120_000);

  afterAll(async () => {
    await worker?.stop();
    await prometheus?.stop();
    await alertmanager?.stop();
    if (webhook) await close(webhook);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('stays silent while the worker is scraped, and fires LifeboatEngineDown and LifeboatEngineAbsent at Alertmanager once it is killed', async () => {
    const engineAlerts = (names: string[]) =>
      notifications.filter((n) => n.status === 'firing').flatMap((n) => n.alerts.filter((a) => names.includes(a.labels.alertname)));
    // Longer than `for` plus group_wait while it runs: neither rule is so much as pending.
    await new Promise((r) => setTimeout(r, 5_000));
    expect((await prometheus!.alerts()).filter((a) => a.labels.alertname.startsWith('LifeboatEngine'))).toEqual([]);
    expect(engineAlerts(['LifeboatEngineDown', 'LifeboatEngineAbsent'])).toEqual([]);

    const killedAt = Date.now();
    worker!.child.kill('SIGKILL');
    await worker!.exited;
    const [down, absent] = await waitFor(
      'both engine alerts at the webhook',
      async () => {
        const down = engineAlerts(['LifeboatEngineDown'])[0];
        const absent = engineAlerts(['LifeboatEngineAbsent'])[0];
        return down && absent ? [down, absent] : undefined;
      },
      60_000,
      100,
    );
    expect(down.labels).toEqual({ alertname: 'LifeboatEngineDown', job: 'lifeboat', instance: metricsAddress, severity: 'critical' });
    expect(down.annotations.summary).toBe(`The lifeboat engine at ${metricsAddress} cannot be scraped`);
    expect(absent.labels).toEqual({ alertname: 'LifeboatEngineAbsent', job: 'lifeboat', severity: 'critical' });
    // Alertmanager holds them as active, too.
    const active = (await (await fetch(`${alertmanager!.url}/api/v2/alerts?active=true`)).json()) as { labels: Record<string, string> }[];
    expect(active.map((a) => a.labels.alertname).sort()).toEqual(expect.arrayContaining(['LifeboatEngineAbsent', 'LifeboatEngineDown']));
    console.log(`worker killed -> both engine alerts at the webhook: ${Date.now() - killedAt} ms (for ${FOR})`);
  }, 120_000);
});
