import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Payload, PayloadCodec } from '@temporalio/common';

/**
 * The HTTP contract the Temporal UI (and `temporal --codec-endpoint`) expects of a codec server: `POST /encode` and
 * `POST /decode` with `{"payloads":[{"metadata":{k: base64}, "data": base64}]}` in and out, the namespace in
 * `X-Namespace`, and CORS for the UI's origin (the browser calls it directly, with a preflight). Payloads are only
 * decoded for the namespaces given; a bearer token, when set, is required (compared in constant time).
 */
export interface CodecServerOptions {
  codec: PayloadCodec;
  host: string;
  port: number;
  /** Origins allowed to call from a browser, e.g. the UI's "http://127.0.0.1:8233". */
  origins: string[];
  namespaces: string[];
  token?: string;
  maxBodyBytes?: number;
}

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')])),
  data: Buffer.from(p.data ?? []).toString('base64'),
});

const digest = (s: string) => createHash('sha256').update(s).digest();

export async function startCodecServer(o: CodecServerOptions): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const maxBody = o.maxBodyBytes ?? 16 * 1024 * 1024;
  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => send(res, 500, { error: err.message }));
  });
  function cors(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    if (origin && o.origins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'content-type, x-namespace, authorization');
      res.setHeader('Vary', 'Origin');
    }
  }
  function send(res: ServerResponse, status: number, body: unknown): void {
    if (res.headersSent) return;
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    cors(req, res);
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'POST' || (path !== '/encode' && path !== '/decode')) return send(res, 404, { error: 'POST /encode or /decode' });
    if (o.token !== undefined) {
      const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      if (!timingSafeEqual(digest(given), digest(o.token))) return send(res, 401, { error: 'missing or wrong bearer token' });
    }
    const namespace = req.headers['x-namespace'];
    if (typeof namespace !== 'string' || !o.namespaces.includes(namespace))
      return send(res, 403, { error: `X-Namespace must be one of: ${o.namespaces.join(', ')}` });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBody) return send(res, 413, { error: `body over ${maxBody} bytes` });
      chunks.push(chunk);
    }
    let payloads: Payload[];
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { payloads?: JsonPayload[] };
      if (!Array.isArray(body.payloads)) throw new Error('expected {"payloads": [...]}');
      payloads = body.payloads.map(fromJson);
    } catch (err) {
      return send(res, 400, { error: `body: ${(err as Error).message}` });
    }
    try {
      const out = path === '/encode' ? await o.codec.encode(payloads) : await o.codec.decode(payloads);
      send(res, 200, { payloads: out.map(toJson) });
    } catch (err) {
      send(res, 400, { error: (err as Error).message });
    }
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    server,
    url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
