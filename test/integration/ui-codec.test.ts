import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { Browser, Page } from 'playwright-core';
import { stringify } from 'yaml';
import { loadConfigFile } from '../../src/config/load';
import { serverBinaries } from '../../src/devserver/binaries';
import { freePort, startProcess, waitFor, type ManagedProcess } from '../../src/devserver/processes';
import { dataConverter } from '../../src/temporal/data-converter';
import { openBrowser, startFromForm, uiUrl } from '../support/temporal-ui';

const run = promisify(execFile);
const SECRET_NAME = 'secret-cluster-k4w';

/**
 * `npm start` with payload encryption configured, as a user runs it (the compiled entry point in its own process):
 * the dev server's UI is pointed at the codec server it starts, so an operator reads plain payloads in the browser
 * while the server stores only ciphertext.
 */
describe('npm start with payload encryption: the UI reads plain payloads through the codec server', () => {
  let engine: ManagedProcess;
  let browser: Browser;
  let page: Page;
  let client: Client;
  let raw: Client;
  let connection: Connection;
  let address: string;
  let uiBase: string;
  const taskQueue = `ui-codec-${Date.now()}`;
  const codecCalls: string[] = [];
  let token: string;

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ui-codec-'));
    const keyPath = join(dir, 'payload.key');
    await writeFile(keyPath, randomBytes(32).toString('base64'), { mode: 0o600 });
    const configFile = join(dir, 'config.yaml');
    await writeFile(
      configFile,
      stringify({
        temporal: { payloadEncryption: { keyId: 'p1' } },
        encryptionKeys: { p1: { file: keyPath } },
        // A cluster of a site: npm start, the whole engine on one machine, must serve its queue too. Nothing listens at
        // its node's address, so its runs fail at the first step, having been picked up.
        clusters: [
          {
            name: 'east-1',
            site: 'east',
            nodes: [{ name: 'cp1', host: '127.0.0.1', port: 1, hostKey: 'SHA256:' + 'A'.repeat(43) }],
            storage: { bucket: 'east-1' },
          },
        ],
      }),
    );
    const [port, uiPort, codecPort] = [await freePort(), await freePort(), await freePort()];
    address = `127.0.0.1:${port}`;
    uiBase = `http://127.0.0.1:${uiPort}`;
    engine = startProcess('npm-start', process.execPath, [join(__dirname, '../../dist/src/start.js')], {
      logFile: join(dir, 'start.log'),
      env: {
        ...process.env,
        LIFEBOAT_CONFIG: configFile,
        LIFEBOAT_DEV_PORT: String(port),
        LIFEBOAT_DEV_UI_PORT: String(uiPort),
        LIFEBOAT_DEV_CODEC_PORT: String(codecPort),
        LIFEBOAT_TASK_QUEUE: taskQueue,
        XDG_DATA_HOME: dir,
      },
    });
    browser = await openBrowser([uiBase, `http://127.0.0.1:${codecPort}`]);
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    // What the browser asks the codec server: proof that the page's plain text came through it.
    page.on('request', (r) => {
      if (r.url().startsWith(`http://127.0.0.1:${codecPort}/`) && r.method() === 'POST') codecCalls.push(new URL(r.url()).pathname);
    });
    const banner = await waitFor(
      'npm start to print its banner',
      async () => {
        if (engine.child.exitCode !== null) throw new Error(`it exited: ${await readFile(engine.logFile, 'utf8')}`);
        const log = await readFile(engine.logFile, 'utf8');
        return log.includes('Stop with Ctrl-C') ? log : false;
      },
      120_000,
      300,
    );
    // The UI reaches the codec server with the token generated into the data dir; it is printed nowhere.
    const tokenFile = join(dir, 'lifeboat', 'codec-server.token');
    expect(banner).toContain(`Codec server:     http://127.0.0.1:${codecPort} (payloads encrypted with key p1; token in ${tokenFile})`);
    token = (await readFile(tokenFile, 'utf8')).trim();
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    expect(banner).not.toContain(token);
    // Without the token, or from a page of another origin, it decrypts nothing.
    const ask = (path: string, headers: Record<string, string> = {}) =>
      fetch(`http://127.0.0.1:${codecPort}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-namespace': 'default', ...headers },
        body: '{"payloads":[]}',
      }).then((r) => r.status);
    expect(await ask('/decode')).toBe(401);
    expect(await ask(`/${token}/decode`, { origin: 'http://evil.example' })).toBe(403);
    expect(await ask(`/${token}/decode`)).toBe(200);
    connection = await Connection.connect({ address });
    client = new Client({ connection, dataConverter: dataConverter(await loadConfigFile(configFile)) });
    raw = new Client({ connection });
  });
  afterAll(async () => {
    await browser?.close();
    await connection?.close();
    await engine?.stop();
  });

  it("a run started from the UI's form is stored encrypted, and its page shows the plain input and failure", async () => {
    // Workflow ids are never encrypted (docs/production.md, payload encryption): this one does not name the cluster.
    const workflowId = `check-from-ui-${Date.now()}`;
    await startFromForm(page, { workflowId, taskQueue, workflowType: 'checkCluster', input: { cluster: SECRET_NAME }, base: uiBase });
    expect(codecCalls).toContain(`/${token}/encode`);
    const handle = client.workflow.getHandle(workflowId);
    await waitFor(
      'the run the form started',
      () =>
        handle.describe().then(
          () => true,
          () => false,
        ),
      30_000,
      250,
    );
    // The worker decoded the form's input: its activity names the cluster it does not know.
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(String(((err as WorkflowFailedError).cause?.cause as Error).message)).toContain(SECRET_NAME);

    // The UI encoded the form's input through the codec server: the server holds only ciphertext, for the CLI too.
    const history = await raw.workflow.getHandle(workflowId).fetchHistory();
    const [payload] = history.events![0].workflowExecutionStartedEventAttributes!.input!.payloads!;
    expect(Buffer.from(payload.metadata!.encoding).toString()).toBe('binary/encrypted');
    expect(Buffer.from(payload.metadata!['encryption-key-id']).toString()).toBe('p1');
    const { temporal } = await serverBinaries();
    const { stdout } = await run(temporal, ['workflow', 'show', '-w', workflowId, '--address', address, '--output', 'json'], {
      maxBuffer: 16 << 20,
    });
    expect(stdout).not.toContain(SECRET_NAME);

    // The run's page, decoded in the browser through the codec server: the input and the failure's message.
    await page.goto(uiUrl(`/workflows/${workflowId}`, uiBase));
    await page.getByText(`"cluster": "${SECRET_NAME}"`).first().waitFor({ state: 'visible', timeout: 30_000 });
    await page.getByText(`unknown cluster`, { exact: false }).first().waitFor({ state: 'visible', timeout: 30_000 });
    await expect(page.content()).resolves.not.toContain('binary/encrypted');
    expect(codecCalls).toContain(`/${token}/decode`);
  });

  it("serves every site's queue of its config: a site's run is picked up, not left waiting for a worker", async () => {
    expect(await readFile(engine.logFile, 'utf8')).toContain(`task queues ${taskQueue}, ${taskQueue}-east`);
    const handle = await client.workflow.start('checkCluster', {
      taskQueue: `${taskQueue}-east`,
      workflowId: `site-run-${Date.now()}`,
      args: [{ cluster: 'east-1' }],
    });
    await waitFor(
      'the site run to be picked up',
      async () => (await handle.fetchHistory()).events?.some((e) => e.workflowTaskCompletedEventAttributes) ?? false,
      30_000,
      300,
    );
    await handle.terminate('test over').catch(() => undefined);
  });
});
