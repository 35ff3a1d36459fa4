import { runMetadata } from '../temporal/run-metadata';
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { alertSignal, respondToAlert } from '../../workflows/respond-to-alert';
import type { AlertNotice } from '../../workflows/response-input';
import type { Config } from '../config/schema';
import { resolveSecret } from '../secrets';
import { siteTaskQueue } from '../temporal/connection';
import { alertsReceived } from './metrics';
import { parseWebhook, type WebhookAlert } from './webhook';

export interface AlertReceiverOptions {
  config: Config;
  /** The clusters alerts may name and their sites, reloaded on SIGHUP; the token, triggers and address stay `config`'s. */
  live?: { readonly current: Config };
  client: Client;
  /** The engine's task queue; each response starts on its cluster's site's queue (siteTaskQueue). */
  taskQueue: string;
  logger: Logger;
  /** host:port to listen on (LIFEBOAT_ALERTS_ADDRESS); port 0 picks a free one. */
  address: string;
  /** How long a start or signal may wait for Temporal before the answer is 503 (Alertmanager then retries). */
  temporalTimeoutMs?: number;
}

export interface AlertReceiver {
  /** Where Alertmanager posts: http(s)://host:port/alerts */
  url: string;
  close(): Promise<void>;
}

export { responseWorkflowId } from '../../workflows/run-ids';
import { responseWorkflowId } from '../../workflows/run-ids';

/** Labels worth keeping in the workflow's history; anything else an alert carries stays out. */
const KEPT_LABELS = ['alertname', 'severity', 'component', 'job', 'instance', 'namespace', 'pod', 'certificate'];

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The endpoint Alertmanager's webhook posts to. It authenticates the caller (bearer token, constant-time), validates
 * the payload, and turns each firing alert that names a configured cluster and a trigger alert into a start-or-join of
 * that cluster's response workflow (respond-<cluster>); resolved alerts are signalled to a running response. It
 * answers 2xx only once Temporal has accepted every start and signal, and 503 when Temporal cannot be reached, so that
 * Alertmanager retries instead of dropping the alert.
 */
export async function startAlertReceiver(o: AlertReceiverOptions): Promise<AlertReceiver> {
  const alerts = o.config.alerts;
  if (!alerts.token) {
    throw new Error(
      'alerts.token: the alert receiver needs a bearer token (a secret reference, {file: ...} or {env: ...}); Alertmanager sends it with http_config.authorization',
    );
  }
  const token = (await resolveSecret(alerts.token, 'alerts.token')).toString('utf8').trim();
  if (token.length < 16)
    throw new Error('alerts.token: the token is shorter than 16 characters; use a long random one (openssl rand -hex 32)');
  const expected = createHash('sha256').update(`Bearer ${token}`).digest();
  const triggers = new Set(alerts.triggers);
  const timeoutMs = o.temporalTimeoutMs ?? 10_000;

  const authorized = (req: IncomingMessage) => {
    // Hashing both sides gives equal lengths, so the comparison takes the same time whatever was sent.
    const got = createHash('sha256')
      .update(req.headers.authorization ?? '')
      .digest();
    return timingSafeEqual(got, expected);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return reply(res, 200, { ok: true });
    if (path !== '/alerts') throw new HttpError(404, 'not found: Alertmanager posts to /alerts');
    if (req.method !== 'POST') throw new HttpError(405, 'method not allowed: POST the webhook payload');
    if (!authorized(req)) {
      alertsReceived.inc({ outcome: 'unauthorized' });
      throw new HttpError(401, 'unauthorized: expected Authorization: Bearer <alerts.token>');
    }
    const body = await readBody(req, alerts.maxBodyBytes);
    const parsed = parseWebhook(body);
    if ('problems' in parsed) {
      alertsReceived.inc({ outcome: 'malformed' });
      throw new HttpError(400, `invalid Alertmanager webhook payload: ${parsed.problems.slice(0, 10).join('; ')}`);
    }
    const accepted: string[] = [];
    const ignored: string[] = [];
    for (const alert of parsed.payload.alerts) {
      const name = alert.labels.alertname ?? '';
      const cluster = alert.labels[alerts.clusterLabel];
      if (!triggers.has(name)) {
        ignored.push(`${name || '(no alertname)'}: not a trigger (alerts.triggers)`);
        alertsReceived.inc({ outcome: 'ignored' });
        continue;
      }
      if (!cluster || !clustersNow(o).some((c) => c.name === cluster)) {
        ignored.push(`${name}: ${cluster ? `unknown cluster "${cluster.slice(0, 63)}"` : `no "${alerts.clusterLabel}" label`}`);
        alertsReceived.inc({ outcome: 'ignored' });
        o.logger.warn(
          { alert: name, clusterLabel: alerts.clusterLabel, cluster: cluster?.slice(0, 63) },
          'alert for no configured cluster ignored',
        );
        continue;
      }
      const notice = noticeOf(alert, name);
      const started = await withTimeout(timeoutMs, (signal) => o.client.withAbortSignal(signal, () => deliver(o, cluster, notice)));
      accepted.push(`${name} -> ${responseWorkflowId(cluster)} (${started})`);
      alertsReceived.inc({ outcome: started });
      o.logger.info(
        { cluster, alert: name, status: notice.status, fingerprint: notice.fingerprint, delivered: started },
        'alert delivered',
      );
    }
    return reply(res, 200, { accepted, ignored });
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) return reply(res, err.status, { error: err.message });
      // Anything else is Temporal not answering (or not accepting): 503 makes Alertmanager retry.
      alertsReceived.inc({ outcome: 'temporal-unavailable' });
      o.logger.error({ err: (err as Error).message }, 'alert not delivered: Temporal did not accept it');
      reply(res, 503, { error: `Temporal did not accept the alert (${(err as Error).message}); retry later` });
    });
  };

  const server: Server = alerts.tls
    ? createHttpsServer({ cert: await readFile(alerts.tls.certFile), key: await readFile(alerts.tls.keyFile) }, listener)
    : createHttpServer(listener);
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  const { host, port } = splitAddress(o.address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const url = `${alerts.tls ? 'https' : 'http'}://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}/alerts`;
  o.logger.info({ url, triggers: [...triggers], clusterLabel: alerts.clusterLabel }, 'alert receiver listening');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The clusters of the config in force: the reloaded one (SIGHUP) when the worker has one. */
const clustersNow = (o: AlertReceiverOptions) => (o.live?.current ?? o.config).clusters;

/** Firing: start the cluster's response or join the running one. Resolved: tell a running one; none running is fine. */
async function deliver(
  o: AlertReceiverOptions,
  cluster: string,
  notice: AlertNotice,
): Promise<'started-or-joined' | 'resolved-signalled' | 'resolved-no-response'> {
  const workflowId = responseWorkflowId(cluster);
  if (notice.status === 'firing') {
    await o.client.workflow.signalWithStart(respondToAlert, {
      workflowId,
      // The cluster's site's queue: its response (and the recovery it may start) runs on a worker of that site.
      taskQueue: siteTaskQueue(o.taskQueue, clustersNow(o).find((c) => c.name === cluster)?.site),
      args: [{ cluster, alert: notice }],
      signal: alertSignal,
      signalArgs: [notice],
      ...runMetadata({
        what: `response to alert ${notice.name} on ${cluster}`,
        cluster,
        reason: `alert ${notice.name}`,
        startedBy: 'the alert receiver (Alertmanager webhook)',
      }),
    });
    return 'started-or-joined';
  }
  try {
    await o.client.workflow.getHandle(workflowId).signal(alertSignal, notice);
    return 'resolved-signalled';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'resolved-no-response';
    throw err;
  }
}

/** The alert as the response workflow sees it: a few labels, bounded lengths, nothing else from the payload. */
function noticeOf(alert: WebhookAlert, name: string): AlertNotice {
  const labels: Record<string, string> = {};
  for (const k of KEPT_LABELS) if (alert.labels[k] !== undefined) labels[k] = alert.labels[k].slice(0, 500);
  return {
    name,
    status: alert.status,
    fingerprint:
      alert.fingerprint.replace(/[^A-Za-z0-9]/g, '').slice(0, 64) ||
      createHash('sha256').update(JSON.stringify(alert.labels)).digest('hex').slice(0, 16),
    ...(alert.startsAt && /^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})$/.test(alert.startsAt) ? { startsAt: alert.startsAt } : {}),
    labels,
    ...(alert.annotations.summary ? { summary: alert.annotations.summary.slice(0, 1000) } : {}),
  };
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new HttpError(413, `payload too large: ${declared} bytes (alerts.maxBodyBytes is ${limit})`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      req.destroy();
      throw new HttpError(413, `payload too large: over ${limit} bytes (alerts.maxBodyBytes)`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Runs body with a signal that aborts its Temporal calls after `ms` (the client would otherwise retry on and on). */
async function withTimeout<T>(ms: number, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      body(abort.signal),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          abort.abort();
          reject(new Error(`no answer within ${ms / 1000} s`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function splitAddress(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (!m) throw new Error(`LIFEBOAT_ALERTS_ADDRESS: expected host:port like 127.0.0.1:9095, got "${address}"`);
  return { host: m[1] || '0.0.0.0', port: Number(m[2]) };
}
