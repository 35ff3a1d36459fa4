import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startAlertReceiver, type AlertReceiver } from '../../src/alerts/receiver';
import { registry } from '../../src/metrics/registry';
import { parseConfig } from '../../src/config/load';
import { startTemporalDevServer, type DevServer } from '../../src/devserver/temporal';
import { requireBinary, serverBinaries } from '../../src/devserver/binaries';
import { freePort, waitFor } from '../../src/devserver/processes';
import { startAlertmanager } from '../../sandbox/alertmanager';
import { testBed } from '../support/bed';
import { historyText } from '../support/history';

const TOKEN = 'receiver-test-token-0123456789abcdef';

/** An Alertmanager v4 payload for the given alerts. */
function payload(alerts: { name: string; cluster?: string; status?: 'firing' | 'resolved'; fingerprint?: string }[]) {
  return {
    version: '4',
    groupKey: '{}:{alertname="x"}',
    truncatedAlerts: 0,
    status: alerts.every((a) => a.status === 'resolved') ? 'resolved' : 'firing',
    receiver: 'lifeboat',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager.example',
    alerts: alerts.map((a) => ({
      status: a.status ?? 'firing',
      labels: { alertname: a.name, ...(a.cluster ? { cluster: a.cluster } : {}), severity: 'critical' },
      annotations: { summary: `${a.name} on ${a.cluster}` },
      startsAt: '2026-11-25T10:00:00.000Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus.example/graph',
      fingerprint: a.fingerprint ?? 'a1b2c3d4e5f60718',
    })),
  };
}

function configFor(taskQueue: string, address: string) {
  process.env.LIFEBOAT_TEST_ALERT_TOKEN = TOKEN;
  return parseConfig(
    {
      temporal: { address, taskQueue },
      alerts: { token: { env: 'LIFEBOAT_TEST_ALERT_TOKEN' }, maxBodyBytes: 64 * 1024 },
      clusters: [
        {
          name: 'rx-prod',
          nodes: [{ name: 'cp1', host: '127.0.0.1', port: 1, hostKey: 'SHA256:' + 'A'.repeat(43) }],
          storage: { bucket: 'rx-prod' },
        },
      ],
    },
    'receiver test config',
  );
}

async function post(
  url: string,
  body: unknown,
  token: string | null = TOKEN,
  raw?: string,
): Promise<{ status: number; body: { error?: string; accepted?: string[]; ignored?: string[] } }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: raw ?? JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { error?: string } };
}

/** Every run ever started under this workflow id: the proof that a storm of alerts gave one response. */
async function runsOf(client: Client, workflowId: string): Promise<number> {
  let n = 0;
  for await (const _ of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) n++;
  return n;
}

describe('the alert receiver (Alertmanager webhook) against the real Temporal dev server', () => {
  let client: Client;
  let connection: Connection;
  let receiver: AlertReceiver;
  const taskQueue = `rx-${process.pid}`;

  beforeAll(async () => {
    const { temporalAddress } = testBed();
    connection = await Connection.connect({ address: temporalAddress });
    client = new Client({ connection });
    // No worker polls this queue: a started response stays pending, so nothing touches any node.
    receiver = await startAlertReceiver({
      config: configFor(taskQueue, temporalAddress),
      client,
      taskQueue,
      logger: pino({ level: 'silent' }),
      address: '127.0.0.1:0',
    });
  });
  afterAll(async () => {
    await client?.workflow
      .getHandle('respond-rx-prod')
      .terminate('test over')
      .catch(() => undefined);
    await receiver?.close();
    await connection?.close();
  });

  it('refuses a missing or wrong token with 401 and starts nothing', async () => {
    expect((await post(receiver.url, payload([{ name: 'KubeAPIDown', cluster: 'rx-prod' }]), null)).status).toBe(401);
    const wrong = await post(receiver.url, payload([{ name: 'KubeAPIDown', cluster: 'rx-prod' }]), 'not-the-token-at-all-000000000');
    expect(wrong.status).toBe(401);
    await expect(client.workflow.getHandle('respond-rx-prod').describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });

  it('answers malformed JSON and a wrong shape with 400 naming the problem', async () => {
    const bad = await post(receiver.url, undefined, TOKEN, '{"version": "4", "alerts": [');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/malformed JSON/);
    const shape = await post(receiver.url, { ...payload([{ name: 'KubeAPIDown', cluster: 'rx-prod' }]), version: '3' });
    expect(shape.status).toBe(400);
    expect(shape.body.error).toMatch(/version/);
    const status = await post(receiver.url, {
      version: '4',
      status: 'firing',
      alerts: [{ status: 'burning', labels: {}, fingerprint: 'x' }],
    });
    expect(status.status).toBe(400);
    expect(status.body.error).toMatch(/alerts\[0\]\.status/);
    const big = await post(receiver.url, { ...payload([]), pad: 'x'.repeat(100 * 1024) });
    expect(big.status).toBe(413);
    await expect(client.workflow.getHandle('respond-rx-prod').describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });

  it('acknowledges alerts for unknown clusters and non-trigger alerts, and starts nothing', async () => {
    const r = await post(
      receiver.url,
      payload([{ name: 'KubeAPIDown', cluster: 'not-configured' }, { name: 'KubeAPIDown' }, { name: 'Watchdog', cluster: 'rx-prod' }]),
    );
    expect(r.status).toBe(200);
    expect(r.body.accepted).toEqual([]);
    expect(r.body.ignored).toEqual([
      expect.stringMatching(/unknown cluster "not-configured"/),
      expect.stringMatching(/no "cluster" label/),
      expect.stringMatching(/Watchdog: not a trigger/),
    ]);
    await expect(client.workflow.getHandle('respond-not-configured').describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    await expect(client.workflow.getHandle('respond-rx-prod').describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    expect(await registry.getSingleMetricAsString('lifeboat_alerts_received_total')).toMatch(/outcome="ignored"} [3-9]/);
  });

  it('turns twenty identical firing alerts (and repeats) into one response run, and signals a resolve to it', async () => {
    const storm = Array.from({ length: 20 }, () => post(receiver.url, payload([{ name: 'KubeAPIDown', cluster: 'rx-prod' }])));
    const answers = await Promise.all(storm);
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(await runsOf(client, 'respond-rx-prod')).toBe(1);
    const handle = client.workflow.getHandle('respond-rx-prod');
    expect((await handle.describe()).status.name).toBe('RUNNING');
    const resolved = await post(receiver.url, payload([{ name: 'KubeAPIDown', cluster: 'rx-prod', status: 'resolved' }]));
    expect(resolved.body.accepted).toEqual([expect.stringMatching(/resolved-signalled/)]);
    const history = await handle.fetchHistory();
    const signals = history.events!.filter((e) => e.workflowExecutionSignaledEventAttributes);
    // 20 joins (each signalWithStart delivers its alert) and one resolve; the input itself carries no secret.
    expect(signals).toHaveLength(21);
    expect(historyText(history)).not.toContain(TOKEN);
    expect(await runsOf(client, 'respond-rx-prod')).toBe(1);
  });

  it("answers 503 while Temporal is down, and a real Alertmanager's retry succeeds once Temporal is back", async () => {
    const bins = await serverBinaries();
    const binary = await requireBinary(bins.temporal, 'temporal CLI');
    const dir = await mkdtemp(join(tmpdir(), 'rx-temporal-'));
    const port = await freePort();
    let server: DevServer = await startTemporalDevServer({ binary, port, logFile: join(dir, 'a.log'), startTimeoutMs: 120_000 });
    const conn = await Connection.connect({ address: server.address });
    const own = new Client({ connection: conn });
    const rx = await startAlertReceiver({
      config: configFor(taskQueue, server.address),
      client: own,
      taskQueue,
      logger: pino({ level: 'silent' }),
      address: '127.0.0.1:0',
      temporalTimeoutMs: 3000,
    });
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, TOKEN, { mode: 0o600 });
    const am = await startAlertmanager({ dir: join(dir, 'am'), webhookUrl: rx.url, bearerTokenFile: tokenFile });
    try {
      await server.stop();
      const down = await post(rx.url, payload([{ name: 'KubeAPIDown', cluster: 'rx-prod' }]));
      expect(down.status).toBe(503);
      expect(down.body.error).toMatch(/Temporal did not accept the alert/);
      // The alert goes through Alertmanager, whose deliveries fail (503) until Temporal is back.
      const fired = await fetch(`${am.url}/api/v2/alerts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([
          {
            labels: { alertname: 'KubeAPIDown', cluster: 'rx-prod', severity: 'critical' },
            annotations: { summary: 'apiserver down' },
            startsAt: new Date().toISOString(),
          },
        ]),
      });
      expect(fired.ok).toBe(true);
      await waitFor(
        'Alertmanager to have tried and failed',
        async () =>
          (await registry.getSingleMetricAsString('lifeboat_alerts_received_total')).match(/outcome="temporal-unavailable"} (\d+)/)?.[1] !==
          '1',
        30_000,
        250,
      );
      server = await startTemporalDevServer({ binary, port, logFile: join(dir, 'b.log'), startTimeoutMs: 120_000 });
      const started = await waitFor(
        "Alertmanager's retry to start the response",
        () =>
          own.workflow
            .getHandle('respond-rx-prod')
            .describe()
            .catch(() => undefined),
        90_000,
        500,
      );
      expect(started.status.name).toBe('RUNNING');
    } finally {
      await am.stop();
      await rx.close();
      // The SDK's gRPC retry timer of an aborted call can still fire up to 5 s later (grpc-retry's longest backoff);
      // closing the connection before that makes the timer throw "Channel has been shut down".
      await new Promise((r) => setTimeout(r, 5500));
      await conn.close();
      await server.stop();
    }
  });
});
