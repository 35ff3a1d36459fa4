import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defaultPayloadConverter } from '@temporalio/common';
import { freePort, waitFor } from '../../src/devserver/processes';
import { startCodecServer, type CodecServer } from '../../src/temporal/codec-server';
import { EncryptionCodec } from '../../src/temporal/payload-codec';

const TOKEN = 'unit-token-0123456789';
const ORIGIN = 'http://127.0.0.1:8233';
const key = randomBytes(32);
const codec = new EncryptionCodec('p1', async () => key);
const toJson = (p: { metadata?: Record<string, Uint8Array | null> | null; data?: Uint8Array | null }) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')])),
  data: Buffer.from(p.data ?? []).toString('base64'),
});

/** A raw HTTP request, so the Host header can be any name, or none when given as '' (fetch sets it from the URL). */
function call(
  base: string,
  path: string,
  o: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(base);
  const { host, ...headers }: Record<string, string> = { 'x-namespace': 'default', ...o.headers };
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: o.method ?? 'POST',
        headers: host === undefined ? headers : { ...headers, host },
        setHost: host !== '',
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.once('error', reject);
    req.end(o.body === undefined ? undefined : JSON.stringify(o.body));
  });
}

describe('codec server: who may decrypt', () => {
  let server: CodecServer;
  let encrypted: { payloads: unknown[] };
  beforeAll(async () => {
    server = await startCodecServer({ codec, host: '127.0.0.1', port: 0, origins: [ORIGIN], namespaces: ['default'], token: TOKEN });
    encrypted = { payloads: (await codec.encode([defaultPayloadConverter.toPayload({ cluster: 'prod-eu1' })])).map(toJson) };
  });
  afterAll(() => server?.close());
  const plain = (body: string) =>
    JSON.parse(Buffer.from((JSON.parse(body) as { payloads: { data: string }[] }).payloads[0].data, 'base64').toString()) as unknown;

  it('decodes only with the token, as a bearer header (the CLI) or as the endpoint path (the UI)', async () => {
    const none = await call(server.url, '/decode', { body: encrypted });
    expect(none.status).toBe(401);
    expect(none.body).not.toContain('prod-eu1');
    expect(
      (await call(server.url, '/decode', { body: encrypted, headers: { authorization: 'Bearer wrong-token-0123456789' } })).status,
    ).toBe(401);
    expect((await call(server.url, '/wrong-token-0123456789/decode', { body: encrypted })).status).toBe(401);
    const bearer = await call(server.url, '/decode', { body: encrypted, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(bearer.status).toBe(200);
    expect(plain(bearer.body)).toEqual({ cluster: 'prod-eu1' });
    // The UI appends /decode to the endpoint it is given: the token is that endpoint's path.
    expect(server.endpointWithToken).toBe(`${server.url}/${TOKEN}`);
    const inPath = await call(server.url, `${new URL(server.endpointWithToken).pathname}/decode`, { body: encrypted });
    expect(inPath.status).toBe(200);
    expect(plain(inPath.body)).toEqual({ cluster: 'prod-eu1' });
    expect(server.url).not.toContain(TOKEN);
    // The temporal CLI sends X-Namespace empty; a foreign namespace is refused.
    const cliLike = await call(server.url, '/decode', {
      body: encrypted,
      headers: { authorization: `Bearer ${TOKEN}`, 'x-namespace': '' },
    });
    expect(cliLike.status).toBe(200);
    expect((await call(server.url, `/${TOKEN}/decode`, { body: encrypted, headers: { 'x-namespace': 'other' } })).status).toBe(403);
  });

  it('refuses a Host header that does not name it (DNS rebinding), even with the token; loopback names pass', async () => {
    const withToken = { body: encrypted, headers: { authorization: `Bearer ${TOKEN}` } };
    const port = new URL(server.url).port;
    for (const host of [`rebind.attacker.example:${port}`, `192.0.2.1:${port}`, '']) {
      const res = await call(server.url, '/decode', { ...withToken, headers: { ...withToken.headers, host } });
      expect([host, res.status]).toEqual([host, 403]);
      expect(res.body).not.toContain('prod-eu1');
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`])
      expect([host, (await call(server.url, '/decode', { ...withToken, headers: { ...withToken.headers, host } })).status]).toEqual([
        host,
        200,
      ]);
  });

  it('refuses a browser Origin other than the UI origins, preflight included; no Origin (the CLI) passes', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const stranger = await call(server.url, '/decode', { body: encrypted, headers: { ...auth, origin: 'http://evil.example' } });
    expect(stranger.status).toBe(403);
    expect(stranger.body).not.toContain('prod-eu1');
    expect(stranger.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = (origin: string) =>
      call(server.url, `/${TOKEN}/decode`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' },
      });
    expect((await preflight('http://evil.example')).status).toBe(403);
    const ok = await preflight(ORIGIN);
    expect(ok.status).toBe(204);
    expect(ok.headers['access-control-allow-origin']).toBe(ORIGIN);
    const fromUi = await call(server.url, '/decode', { body: encrypted, headers: { ...auth, origin: ORIGIN } });
    expect(fromUi.status).toBe(200);
    expect(fromUi.headers['access-control-allow-origin']).toBe(ORIGIN);
  });

  it('answers /encode only when started with it on', async () => {
    const body = { payloads: [toJson(defaultPayloadConverter.toPayload('hi'))] };
    const off = await call(server.url, `/${TOKEN}/encode`, { body });
    expect(off.status).toBe(404);
    expect(off.body).toContain('--encode');
    const withEncode = await startCodecServer({
      codec,
      host: '127.0.0.1',
      port: 0,
      origins: [ORIGIN],
      namespaces: ['default'],
      token: TOKEN,
      encode: true,
    });
    try {
      const on = await call(withEncode.url, `/${TOKEN}/encode`, { body });
      expect(on.status).toBe(200);
      const decoded = await codec.decode(
        (JSON.parse(on.body) as { payloads: { metadata: Record<string, string>; data: string }[] }).payloads.map((p) => ({
          metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
          data: Buffer.from(p.data, 'base64'),
        })),
      );
      expect(defaultPayloadConverter.fromPayload(decoded[0])).toBe('hi');
      expect((await call(withEncode.url, '/encode', { body })).status).toBe(401);
    } finally {
      await withEncode.close();
    }
  });

  it('will not start with a short token', async () => {
    await expect(
      startCodecServer({ codec, host: '127.0.0.1', port: 0, origins: [ORIGIN], namespaces: ['default'], token: 'short' }),
    ).rejects.toThrow(/at least 16 characters/);
  });
});

const cli = join(__dirname, '../../dist/src/cli/main.js');

describe('lifeboat codec-server (compiled)', () => {
  let dir: string;
  let configFile: string;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` (npm test does)`);
    dir = await mkdtemp(join(tmpdir(), 'codec-cli-'));
    await writeFile(join(dir, 'p1.key'), randomBytes(32).toString('base64'), { mode: 0o600 });
    configFile = join(dir, 'config.yaml');
    await writeFile(
      configFile,
      [
        'temporal:',
        '  payloadEncryption: { keyId: p1 }',
        'encryptionKeys:',
        `  p1: { file: ${join(dir, 'p1.key')} }`,
        'clusters: []',
        '',
      ].join('\n'),
    );
  });
  afterAll(() => {
    for (const c of children) c.kill('SIGTERM');
  });
  const env = (data: string) => ({ ...process.env, LIFEBOAT_CONFIG: configFile, XDG_DATA_HOME: data, TEMPORAL_ADDRESS: '' });

  it('with no token configured, on loopback: generates one into a 0600 file, prints its path and never the token', async () => {
    const data = join(dir, 'data');
    const port = await freePort();
    const child = spawn(process.execPath, [cli, 'codec-server', '--listen', `127.0.0.1:${port}`], { env: env(data) });
    children.push(child);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const file = join(data, 'lifeboat', 'codec-server.token');
    await waitFor('the codec server to say where its token is', async () => out.includes(file), 30_000, 100);
    const token = (await readFile(file, 'utf8')).trim();
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(out).not.toContain(token);
    const base = `http://127.0.0.1:${port}`;
    const encrypted = { payloads: (await codec.encode([defaultPayloadConverter.toPayload('x')])).map(toJson) };
    expect((await call(base, '/decode', { body: encrypted })).status).toBe(401);
    // Its key is not this test's, but the token let the request through to the codec (400, not 401).
    expect((await call(base, `/${token}/decode`, { body: encrypted })).status).toBe(400);
    expect((await call(base, `/${token}/encode`, { body: encrypted })).status).toBe(404);
  });

  it('beyond loopback without a token: refuses to start, naming the setting', async () => {
    const r = await promisify(execFile)(process.execPath, [cli, 'codec-server', '--listen', '0.0.0.0:0'], {
      env: env(join(dir, 'data2')),
      timeout: 30_000,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number | null; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/temporal\.codecServer\.token: required to listen on 0\.0\.0\.0:0, beyond loopback/);
    expect(existsSync(join(dir, 'data2'))).toBe(false);
  });
});
