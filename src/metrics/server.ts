import { createServer, request, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { Logger } from 'pino';
import { registry } from './registry';
// Registers lifeboat_build_info, the series that tells Prometheus an engine is being scraped at all.
import './build-info';

export interface MetricsServer {
  /** host:port the server listens on (LIFEBOAT_METRICS_ADDRESS, with the port resolved when it was 0). */
  address: string;
  /** Loopback host:port of the Temporal runtime's own Prometheus exporter, merged into every scrape. */
  runtimeAddress: string;
  /** Spread into Runtime.install(): binds the runtime's exporter to runtimeAddress. */
  runtimeOptions: { telemetryOptions: { metrics: { prometheus: { bindAddress: string } } } };
  close(): Promise<void>;
}

function splitAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address.trim());
  if (!m) throw new Error(`LIFEBOAT_METRICS_ADDRESS: expected host:port (like 0.0.0.0:9464), got "${address}"`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}

/** A free TCP port on 127.0.0.1 (asked of the kernel, released at once). */
async function freeLoopbackPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve, reject) => s.once('error', reject).listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** The runtime exporter's text, or undefined (with why) when it does not answer. */
function scrapeRuntime(address: string, timeoutMs = 2000): Promise<{ text?: string; error?: string }> {
  const { host, port } = splitAddress(address);
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/metrics', method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve(res.statusCode === 200 ? { text: Buffer.concat(chunks).toString('utf8') } : { error: `HTTP ${res.statusCode}` }),
      );
      res.on('error', (err) => resolve({ error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ error: err.message }));
    req.end();
  });
}

/**
 * The worker's one Prometheus endpoint (`GET /metrics` at `address`): the engine's own metrics (prom-client
 * registry: health, recovery and backup gauges) followed by the Temporal runtime's (SDK metrics and what workflows
 * count through their metricMeter, such as lifeboat_backups_failed), which the runtime serves on a loopback port
 * of its own and this server fetches on every scrape. If the runtime's part fails, ours is still served.
 * Returns undefined when no address is given (metrics off).
 */
export async function startMetricsServer(address: string | undefined, logger?: Logger): Promise<MetricsServer | undefined> {
  if (!address) return undefined;
  const { host, port } = splitAddress(address);
  const runtimeAddress = `127.0.0.1:${await freeLoopbackPort()}`;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    void (async () => {
      const [ours, runtime] = await Promise.all([registry.metrics(), scrapeRuntime(runtimeAddress)]);
      if (runtime.error) logger?.warn({ runtimeAddress, error: runtime.error }, 'Temporal runtime metrics unavailable for this scrape');
      const body = `${ours.trimEnd()}\n${runtime.text ?? `# Temporal runtime metrics unavailable: ${runtime.error?.replace(/\n/g, ' ')}\n`}`;
      res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
    })().catch((err: Error) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot serve metrics at ${address}: ${err.message}`)));
    server.listen(port, host, resolve);
  });
  const bound = server.address() as { address: string; port: number };
  const listening = `${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`;
  logger?.info({ address: listening, runtimeAddress }, 'serving Prometheus metrics at /metrics');
  return {
    address: listening,
    runtimeAddress,
    runtimeOptions: { telemetryOptions: { metrics: { prometheus: { bindAddress: runtimeAddress } } } },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
