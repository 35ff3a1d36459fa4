import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteNamespace, sh } from '../../sandbox/netns';
import { command } from '../../src/ssh/quote';

/**
 * A network namespace for the browser, with only the loopback ports it is given, each forwarded to the same port on
 * the host's loopback through a unix socket (a path crosses namespaces; a TCP port does not).
 *
 * Why: Chromium watches the host's network interfaces (netlink) and fails every request in flight with
 * ERR_NETWORK_CHANGED when one appears or goes, and the sandbox nodes of the files running beside a browser test add
 * and remove links all the time. Measured: the Temporal UI's page scripts failed to load with it and the page showed
 * "500 Internal Error" (a three-lane run, 2026-12-05). In its own namespace the browser sees no link but loopback.
 */
export interface BrowserNet {
  /** An executable that starts Chromium inside the namespace (what playwright launches). */
  readonly chromium: string;
  close(): Promise<void>;
}

/** Inside the namespace: listens on 127.0.0.1:<port> for each port, and passes each connection to <dir>/<port>.sock. */
const FORWARDER = `
const net = require('node:net');
const [dir, ...ports] = process.argv.slice(1);
let listening = 0;
for (const port of ports) {
  net.createServer((c) => {
    const u = net.connect(dir + '/' + port + '.sock');
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  }).listen(Number(port), '127.0.0.1', () => { if (++listening === ports.length) console.log('ready'); });
}
`;

let made = 0;

export async function browserNet(origins: readonly string[], chromiumPath: string): Promise<BrowserNet> {
  const ports = [...new Set(origins.map((o) => portOf(o)))];
  const netns = `lifeboat-${process.pid}-browser${++made}`;
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-browser-'));
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  let forwarder: ChildProcess | undefined;
  const close = async () => {
    forwarder?.kill('SIGKILL');
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await deleteNamespace(netns);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await sh('ip', ['netns', 'add', netns]);
    await sh('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    for (const port of ports) {
      const server = createServer((c) => {
        const u = connect(port, '127.0.0.1');
        for (const s of [c, u]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
        }
        c.pipe(u).pipe(c);
        c.on('error', () => u.destroy());
        u.on('error', () => c.destroy());
      });
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(join(dir, `${port}.sock`), resolve));
      servers.push(server);
    }
    forwarder = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, '-e', FORWARDER, dir, ...ports.map(String)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      let err = '';
      forwarder!.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      forwarder!.stdout!.once('data', () => resolve());
      forwarder!.once('exit', (code) => reject(new Error(`the browser's port forwarder exited with ${code}: ${err.trim()}`)));
    });
    const chromium = join(dir, 'chromium');
    await writeFile(chromium, `#!/bin/sh\nexec ${command(['nsenter', `--net=/run/netns/${netns}`, '--', chromiumPath])} "$@"\n`);
    await chmod(chromium, 0o755);
    return { chromium, close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

function portOf(origin: string): number {
  const url = new URL(origin);
  if (url.hostname !== '127.0.0.1' || !url.port) throw new Error(`browser origin ${origin}: expected http://127.0.0.1:<port>`);
  return Number(url.port);
}
