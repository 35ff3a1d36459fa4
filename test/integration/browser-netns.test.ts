import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { openBrowser } from '../support/temporal-ui';

const run = promisify(execFile);

/**
 * The browser tests run beside files whose sandbox nodes add and remove host links all the time; Chromium fails the
 * requests in flight on every such change (ERR_NETWORK_CHANGED) unless it runs in a namespace of its own.
 */
describe('the test browser', () => {
  let server: Server;
  let origin: string;
  let flapping: ChildProcess;
  const link = `lbflap${process.pid % 100000}`;

  beforeAll(async () => {
    // A page of 20 scripts, each answered after 50 ms: requests in flight whenever a link changes.
    server = createServer((req, res) => {
      setTimeout(() => {
        if (req.url === '/')
          res.end(`<html><body>${[...Array(20).keys()].map((i) => `<script src="/s${i}.js"></script>`).join('')}</body></html>`);
        else res.end(`/*${'x'.repeat(100_000)}*/`);
      }, 50);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // As a sandbox node does: a veth pair made, addressed and brought up on the host, then deleted.
    flapping = spawn(
      'bash',
      [
        '-c',
        `while :; do ip link add ${link} type veth peer name ${link}p; ip addr add 10.250.0.1/24 dev ${link}; ip link set ${link} up; sleep 0.05; ip link del ${link}; sleep 0.05; done`,
      ],
      { stdio: 'ignore' },
    );
  });
  afterAll(async () => {
    flapping?.kill('SIGKILL');
    await run('ip', ['link', 'del', link]).catch(() => undefined);
    server?.close();
  });

  it('loads pages without a failed request while host links come and go', async () => {
    const browser = await openBrowser([origin]);
    try {
      const page = await browser.newPage();
      const failed: string[] = [];
      page.on('requestfailed', (r) => failed.push(`${r.url()}: ${r.failure()?.errorText}`));
      for (let i = 0; i < 20; i++) await page.goto(`${origin}/`).catch((err: Error) => failed.push(err.message.split('\n')[0]));
      expect(failed).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
