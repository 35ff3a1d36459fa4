import { Connection } from '@temporalio/client';
import { readFile, mkdtemp, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, startProcess, waitFor, type ManagedProcess } from '../../src/devserver/processes';
import { testBed } from '../support/bed';
import { compiledCli } from '../support/cli';

/** `lifeboat worker` in its own process, pointed at `address`, logging JSON lines to a file. */
async function launchWorker(
  address: string,
  namespace = 'default',
): Promise<{ proc: ManagedProcess; taskQueue: string; log(): Promise<string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-worker-start-'));
  const taskQueue = `worker-start-${Date.now()}`;
  await writeFile(join(dir, 'config.yaml'), stringify({ temporal: { address, namespace, taskQueue }, clusters: [] }));
  const proc = startProcess('worker', process.execPath, [compiledCli, '--config', join(dir, 'config.yaml'), 'worker'], {
    logFile: join(dir, 'worker.log'),
    env: { ...process.env, LOG_FORMAT: 'json', LIFEBOAT_CONFIG: '' },
  });
  return { proc, taskQueue, log: () => readFile(proc.logFile, 'utf8') };
}

/** A TCP forwarder on `port` to the shared dev server: the server "coming up" at the address the worker waits on. */
function forwardTo(port: number, target: string): Promise<{ close(): Promise<void> }> {
  const [host, targetPort] = [target.replace(/:\d+$/, ''), Number(target.split(':').pop())];
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect({ host, port: targetPort });
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  return new Promise((resolve) =>
    server.listen(port, '127.0.0.1', () =>
      resolve({
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      }),
    ),
  );
}

const waitingLines = (log: string, address: string) =>
  log.split('\n').filter((l) => l.includes(`"msg":"Temporal is not reachable at ${address}; waiting for it"`));

describe('the worker started while its Temporal server is down', () => {
  it('waits, saying where it tries, without exiting; once the server answers there it starts and polls its queue', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const worker = await launchWorker(address);
    let forwarder: { close(): Promise<void> } | undefined;
    const connection = await Connection.connect({ address: testBed().temporalAddress });
    try {
      await waitFor('two waiting lines', async () => waitingLines(await worker.log(), address).length >= 2, 30_000);
      expect(worker.proc.child.exitCode).toBeNull();
      const [first] = waitingLines(await worker.log(), address).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(first).toMatchObject({ level: 40, from: 'temporal.address', attempt: 1 });
      expect(first.temporal).toBe(`${address}, namespace default, plain text`);

      forwarder = await forwardTo(port, testBed().temporalAddress);
      await waitFor('the worker to start', async () => (await worker.log()).includes('"msg":"worker started"'), 60_000);
      // Polling for real: the server lists it as a poller of its queue.
      await waitFor(
        'a poller on the queue',
        async () => {
          const r = await connection.workflowService.describeTaskQueue({
            namespace: 'default',
            taskQueue: { name: worker.taskQueue },
            taskQueueType: 1, // WORKFLOW
          });
          return r.pollers.length > 0;
        },
        30_000,
        500,
      );
      await worker.proc.stop();
      expect(await worker.proc.exited).toBe(0);
    } finally {
      await worker.proc.stop();
      await forwarder?.close();
      await connection.close();
    }
  });

  it('SIGTERM while waiting ends it at once, exit code 0', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const worker = await launchWorker(address);
    try {
      await waitFor('a waiting line', async () => waitingLines(await worker.log(), address).length >= 1, 30_000);
      const started = Date.now();
      worker.proc.child.kill('SIGTERM');
      expect(await worker.proc.exited).toBe(0);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(await worker.log()).toContain('worker stopped before Temporal was reachable');
    } finally {
      await worker.proc.stop();
    }
  });

  it('`lifeboat temporal setup --wait` (the compose entrypoint) waits the same way, then registers the attributes', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-setup-wait-'));
    const setup = startProcess('setup', process.execPath, [compiledCli, 'temporal', 'setup', '--wait'], {
      logFile: join(dir, 'setup.log'),
      env: { ...process.env, LIFEBOAT_CONFIG: '', TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'default' },
    });
    let forwarder: { close(): Promise<void> } | undefined;
    try {
      await waitFor('a waiting line', async () => waitingLines(await readFile(setup.logFile, 'utf8'), address).length >= 1, 30_000);
      expect(setup.child.exitCode).toBeNull();
      forwarder = await forwardTo(port, testBed().temporalAddress);
      expect(await setup.exited).toBe(0);
      // The dev server registers them itself: present, not added.
      expect(await readFile(setup.logFile, 'utf8')).toContain('present  LifeboatCluster');
    } finally {
      await setup.stop();
      await forwarder?.close();
    }
  });

  it('a namespace that does not exist is a setting to fix, not a server to wait for: exit 1 at once, naming it', async () => {
    const worker = await launchWorker(testBed().temporalAddress, 'no-such-namespace');
    try {
      const code = await worker.proc.exited;
      const log = await worker.log();
      expect(code).toBe(1);
      expect(log).toMatch(/no-such-namespace/);
      expect(waitingLines(log, testBed().temporalAddress)).toEqual([]);
    } finally {
      await worker.proc.stop();
    }
  });
});
