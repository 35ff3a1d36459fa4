import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';

/** A long-running child in its own process group, so stop() also ends whatever it started. */
export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<number | null>;
  stop(graceMs?: number): Promise<void>;
}

export function startProcess(
  name: string,
  file: string,
  args: readonly string[],
  options: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string },
): ManagedProcess {
  const fd = openSync(options.logFile, 'a');
  const child = spawn(file, args, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: options.env ?? process.env,
    cwd: options.cwd,
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  return {
    name,
    child,
    logFile: options.logFile,
    exited,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      const group = -child.pid;
      try {
        process.kill(group, 'SIGTERM');
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(group, 'SIGKILL');
        } catch {
          // already gone
        }
      }, graceMs);
      await exited;
      clearTimeout(timer);
      try {
        process.kill(group, 'SIGKILL'); // stragglers of the group
      } catch {
        // none left
      }
    },
  };
}

/** A port nobody listens on right now, from the kernel's ephemeral range. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const port = await unboundPort(host);
    // The port is free only until someone binds it, and the kernel may hand the same one out again before the
    // process it was meant for has started (bench:fleet starts 45 etcds, two ports each, then waits for them: one
    // etcd's plain-HTTP peer port once came back as another's TLS client port). Never twice from one process.
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    // A worker runs drills for months: remember the recent ones only (a port is bound within seconds of being handed out).
    if (handedOut.size > 1000) handedOut.delete(handedOut.values().next().value!);
    return port;
  }
}

const handedOut = new Set<number>();

function unboundPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Thrown by a waitFor check when waiting longer cannot help (the process being waited for has exited). */
export class GiveUp extends Error {}

/**
 * Polls until check() resolves truthy; the last error is part of the timeout message, so failures explain themselves.
 * A GiveUp thrown by check() ends the wait at once, with the same message.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
      if (err instanceof GiveUp) break;
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const gaveUp = last instanceof GiveUp;
  throw new Error(
    `${gaveUp ? 'gave up' : `timed out after ${timeoutMs} ms`} waiting for ${what}${last ? `: ${(last as Error).message ?? last}` : ''}`,
  );
}
