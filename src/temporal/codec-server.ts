import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
import type { Payload, PayloadCodec } from '@temporalio/common';

/**
 * The HTTP contract the Temporal UI (and `temporal --codec-endpoint`) expects of a codec server: `POST /encode` and
 * `POST /decode` with `{"payloads":[{"metadata":{k: base64}, "data": base64}]}` in and out, the namespace in
 * `X-Namespace`, and CORS for the UI's origin (the browser calls it directly, with a preflight). Clients append
 * `/encode` or `/decode` to the endpoint they are given, so an endpoint may carry a path.
 *
 * Whoever reaches it with the token decrypts, so: the token is always required, as `Authorization: Bearer <token>`
 * (the CLI's `--codec-auth`) or as the endpoint's first path segment, `http://host:port/<token>` (the UI sends a bearer
 * token only with an OIDC login of its own, so a plain UI can carry it only in the URL); the Host header must name this
 * server (a page that rebinds its own DNS name to loopback sends its own name); a browser's Origin must be one of the
 * UI origins; and `/encode` (an oracle that makes ciphertext the worker accepts) answers only when asked for.
 */
export interface CodecServerOptions {
  codec: PayloadCodec;
  host: string;
  port: number;
  /** Origins allowed to call from a browser, e.g. the UI's "http://127.0.0.1:8233". */
  origins: string[];
  namespaces: string[];
  /** The shared secret every caller presents; at least 16 characters. */
  token: string;
  /** Names the server is reached by besides its listen address (and, on loopback or a wildcard, the machine's own). */
  hostnames?: string[];
  /** Serve `POST /encode` too: the UI's start-workflow and signal forms need it. */
  encode?: boolean;
  maxBodyBytes?: number;
}

export interface CodecServer {
  server: Server;
  /** The base address, without the token: safe to print. */
  url: string;
  /** The endpoint to give the UI (`--ui-codec-endpoint`) or `temporal --codec-endpoint`: holds the token, a secret. */
  endpointWithToken: string;
  close(): Promise<void>;
}

export const MIN_TOKEN_LENGTH = 16;

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
const unbracket = (h: string) => h.toLowerCase().replace(/^\[|\]$/g, '');
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];
export const isLoopback = (host: string): boolean => {
  const h = unbracket(host);
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
};
const isWildcard = (host: string) => ['', '0.0.0.0', '::'].includes(unbracket(host));

/** The names a request's Host header may carry: those this server is reached by, no other (DNS rebinding). */
function acceptedHostnames(o: CodecServerOptions): Set<string> {
  const names = [o.host, ...(o.hostnames ?? [])];
  if (isLoopback(o.host) || isWildcard(o.host)) names.push(...LOOPBACK_NAMES);
  if (isWildcard(o.host)) {
    names.push(hostname());
    for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) names.push(a.address);
  }
  return new Set(names.map(unbracket));
}

function hostnameOf(hostHeader: string | undefined): string | undefined {
  if (!hostHeader) return undefined;
  try {
    return unbracket(new URL(`http://${hostHeader}`).hostname);
  } catch {
    return undefined;
  }
}

export async function startCodecServer(o: CodecServerOptions): Promise<CodecServer> {
  if (o.token.length < MIN_TOKEN_LENGTH) throw new Error(`codec server token: at least ${MIN_TOKEN_LENGTH} characters`);
  const maxBody = o.maxBodyBytes ?? 16 * 1024 * 1024;
  const hostnames = acceptedHostnames(o);
  const expected = digest(o.token);
  const tokenMatches = (given: string | undefined) => given !== undefined && timingSafeEqual(digest(given), expected);
  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => send(res, 500, { error: err.message }));
  });
  function cors(origin: string, res: ServerResponse): void {
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'content-type, x-namespace, authorization');
    res.setHeader('Vary', 'Origin');
  }
  function send(res: ServerResponse, status: number, body: unknown): void {
    if (res.headersSent) return;
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = hostnameOf(req.headers.host);
    if (host === undefined || !hostnames.has(host))
      return send(res, 403, { error: `Host "${req.headers.host ?? ''}" is not a name this server is reached by` });
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!o.origins.includes(origin)) return send(res, 403, { error: `Origin "${origin}" is not one of the UI origins` });
      cors(origin, res);
    }
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    // `/decode` with a bearer token, or `/<token>/decode` (the endpoint with the token as its path).
    const m = /^(?:\/([^/]+))?\/(encode|decode)$/.exec((req.url ?? '').split('?')[0]);
    if (req.method !== 'POST' || !m) return send(res, 404, { error: 'POST /decode or /encode' });
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    let segment: string | undefined;
    try {
      segment = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
    } catch {
      segment = undefined;
    }
    if (!tokenMatches(bearer) && !tokenMatches(segment))
      return send(res, 401, { error: 'missing or wrong token (Authorization: Bearer <token>, or the endpoint http://host:port/<token>)' });
    // The `temporal` CLI (1.5) sends `X-Namespace:` empty: no namespace named is no foreign one. The header is no
    // credential (any caller may set it); a foreign namespace is refused so a UI of another namespace fails plainly.
    const namespace = req.headers['x-namespace'] ?? '';
    if (typeof namespace !== 'string' || (namespace !== '' && !o.namespaces.includes(namespace)))
      return send(res, 403, { error: `X-Namespace must be one of: ${o.namespaces.join(', ')}` });
    const op = m[2];
    if (op === 'encode' && !o.encode) return send(res, 404, { error: 'POST /encode is off (lifeboat codec-server --encode turns it on)' });
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
      const out = op === 'encode' ? await o.codec.encode(payloads) : await o.codec.decode(payloads);
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
  const url = `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;
  return {
    server,
    url,
    endpointWithToken: `${url}/${encodeURIComponent(o.token)}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
