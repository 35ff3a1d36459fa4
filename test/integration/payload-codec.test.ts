import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { serverBinaries } from '../../src/devserver/binaries';
import { startCodecServer } from '../../src/temporal/codec-server';
import { payloadCodec } from '../../src/temporal/data-converter';
import { checkCluster } from '../../workflows';
import { testBed } from '../support/bed';
import { startTestWorker, type RunningWorker } from '../support/worker';

const run = promisify(execFile);
type JsonPayload = { metadata: Record<string, string>; data: string };
const SECRET_NAME = 'secret-cluster-x7q';

describe('payload encryption: the server stores ciphertext, the codec server gives the UI the plain input', () => {
  let worker: RunningWorker;
  let codecServer: Awaited<ReturnType<typeof startCodecServer>>;
  let workflowId: string;
  const origin = 'http://127.0.0.1:8233';

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'codec-'));
    const [old, current] = [join(dir, 'p0.key'), join(dir, 'p1.key')];
    await writeFile(old, randomBytes(32).toString('base64'));
    await writeFile(current, randomBytes(32).toString('base64'));
    worker = await startTestWorker([], {
      encryptionKeys: { p0: { file: old }, p1: { file: current } },
      temporal: { payloadEncryption: { keyId: 'p1' } },
    });
    codecServer = await startCodecServer({
      codec: payloadCodec(worker.config)!,
      host: '127.0.0.1',
      port: 0,
      origins: [origin],
      namespaces: ['default'],
      token: 'test-token-1234567890',
      encode: true,
    });
    workflowId = `codec-${Date.now()}`;
    // The worker decodes the input (the activity names the cluster in its error), so the codec works end to end.
    const err = await worker.client.workflow
      .execute(checkCluster, { taskQueue: worker.taskQueue, workflowId, args: [{ cluster: SECRET_NAME }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(String(((err as WorkflowFailedError).cause?.cause as Error).message)).toContain(SECRET_NAME);
  });
  afterAll(async () => {
    await codecServer?.close();
    await worker?.stop();
  });

  /** The started event's input as stored, read by a client that has no codec. */
  async function storedInput() {
    const connection = await Connection.connect({ address: testBed().temporalAddress });
    try {
      const raw = new Client({ connection });
      const history = await raw.workflow.getHandle(workflowId).fetchHistory();
      return history.events![0].workflowExecutionStartedEventAttributes!.input!.payloads!;
    } finally {
      await connection.close();
    }
  }

  it('the history the temporal CLI reads holds the input only as ciphertext under key p1', async () => {
    const { temporal } = await serverBinaries();
    const { stdout } = await run(temporal, [
      'workflow',
      'show',
      '-w',
      workflowId,
      '--address',
      testBed().temporalAddress,
      '--output',
      'json',
    ]);
    const events = (JSON.parse(stdout) as { events: Record<string, unknown>[] }).events;
    expect(events.map((e) => Object.keys(e).find((k) => k.endsWith('EventAttributes')))).toEqual(
      expect.arrayContaining(['activityTaskFailedEventAttributes', 'workflowExecutionFailedEventAttributes']),
    );
    // Nowhere: not in the input, the activity's input, nor the failures (their messages are encrypted too).
    expect(stdout).not.toContain(SECRET_NAME);
    expect(stdout).not.toContain(Buffer.from(SECRET_NAME).toString('base64').slice(0, 12));
    expect(stdout).toContain('Encoded failure');
    const [payload] = await storedInput();
    expect(Buffer.from(payload.metadata!.encoding).toString()).toBe('binary/encrypted');
    expect(Buffer.from(payload.metadata!['encryption-key-id']).toString()).toBe('p1');
    expect(Buffer.from(payload.data!).toString('latin1')).not.toContain(SECRET_NAME);
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${codecServer.url}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-namespace': 'default',
        authorization: 'Bearer test-token-1234567890',
        origin,
        ...headers,
      },
      body: JSON.stringify(body),
    });
  const toJson = (p: { metadata?: Record<string, Uint8Array | null> | null; data?: Uint8Array | null }) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')])),
    data: Buffer.from(p.data ?? []).toString('base64'),
  });

  it('POST /decode returns the plain input, with CORS for the UI origin', async () => {
    const res = await post('/decode', { payloads: (await storedInput()).map(toJson) });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(origin);
    const body = (await res.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    expect(Buffer.from(body.payloads[0].metadata.encoding, 'base64').toString()).toBe('json/plain');
    expect(JSON.parse(Buffer.from(body.payloads[0].data, 'base64').toString())).toEqual({ cluster: SECRET_NAME });
  });

  it('/encode then /decode round-trips; refuses a wrong token, a foreign namespace and an unknown origin', async () => {
    const plain = { metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from('"hi"').toString('base64') };
    const enc = (await (await post('/encode', { payloads: [plain] })).json()) as { payloads: unknown[] };
    expect(JSON.stringify(enc)).not.toContain(plain.data);
    const dec = (await (await post('/decode', enc)).json()) as { payloads: unknown[] };
    expect(dec.payloads).toEqual([plain]);
    expect((await post('/decode', enc, { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await post('/decode', enc, { 'x-namespace': 'other' })).status).toBe(403);
    const preflight = await fetch(`${codecServer.url}/decode`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/x-namespace/);
    const stranger = await post('/decode', enc, { origin: 'http://evil.example' });
    expect(stranger.status).toBe(403);
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('the temporal CLI decodes through it with the token, as --codec-auth or in the endpoint, and not without', async () => {
    const { temporal } = await serverBinaries();
    /** The started event's input as `temporal workflow show` prints it through the codec server, or its error. */
    const shownInput = async (...codec: string[]) => {
      const args = ['workflow', 'show', '-w', workflowId, '--address', testBed().temporalAddress, '--output', 'json', ...codec];
      const { stdout } = await run(temporal, args, { maxBuffer: 16 << 20, timeout: 60_000 });
      const events = (
        JSON.parse(stdout) as { events: { workflowExecutionStartedEventAttributes?: { input: { payloads: JsonPayload[] } } }[] }
      ).events;
      const [p] = events[0].workflowExecutionStartedEventAttributes!.input.payloads;
      return { encoding: Buffer.from(p.metadata.encoding, 'base64').toString(), data: Buffer.from(p.data, 'base64').toString() };
    };
    const plain = { encoding: 'json/plain', data: JSON.stringify({ cluster: SECRET_NAME }) };
    await expect(shownInput('--codec-endpoint', codecServer.url, '--codec-auth', 'Bearer test-token-1234567890')).resolves.toEqual(plain);
    await expect(shownInput('--codec-endpoint', codecServer.endpointWithToken)).resolves.toEqual(plain);
    // Without the token the CLI retries the codec server's 401 until its deadline, and shows nothing.
    const refused = await shownInput('--codec-endpoint', codecServer.url).catch((e: { stdout?: string; stderr?: string }) => e);
    expect(JSON.stringify(refused)).not.toContain(SECRET_NAME);
    expect(refused).not.toHaveProperty('encoding', 'json/plain');
  });
});
