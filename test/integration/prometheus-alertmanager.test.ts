import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startAlertmanager, type AlertmanagerServer } from '../../sandbox/alertmanager';
import { startPrometheus, type PrometheusServer } from '../../sandbox/prometheus';
import { waitFor } from '../../src/devserver/processes';

/**
 * The Prometheus + Alertmanager test bed end to end, without the engine: a tiny exporter stands in for the worker's
 * metrics, the shipped rules run with `for: 2s`, and a tiny webhook server stands in for lifeboat's alert receiver.
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
          `lifeboat_component_up{cluster="t1",component="etcd"} ${up}\n`,
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
