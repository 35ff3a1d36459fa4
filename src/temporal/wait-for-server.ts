import { connect as tcpConnect } from 'node:net';
import type { Logger } from 'pino';
import { TemporalUnreachableError } from './connect-errors';
import { describeTarget, type TemporalTarget } from './connection';

/**
 * Connects with `connect`, waiting while the Temporal server cannot be reached: a worker started before its server
 * (compose, a node reboot, a server upgrade) waits, saying where it is trying, instead of exiting and being restarted
 * in a loop. Any other connect error (TLS, credentials, namespace) is a setting to fix and is thrown at once. Resolves
 * undefined if `signal` aborts (SIGTERM while waiting). A plain TCP connect is tried first: the SDK's own connect
 * spends its whole 10 s deadline on a refused port, which would make the wait deaf to SIGTERM.
 */
export async function connectWhenReachable<T>(
  connect: () => Promise<T>,
  o: { target: TemporalTarget; logger: Logger; signal?: AbortSignal; maxDelayMs?: number },
): Promise<T | undefined> {
  const maxDelayMs = o.maxDelayMs ?? 30_000;
  const since = Date.now();
  for (let attempt = 1, delayMs = 1_000; ; attempt++, delayMs = Math.min(delayMs * 2, maxDelayMs)) {
    if (o.signal?.aborted) return undefined;
    try {
      await tcpReachable(o.target.address);
      return await connect();
    } catch (err) {
      if (!(err instanceof TemporalUnreachableError)) throw err;
      o.logger.warn(
        {
          temporal: describeTarget(o.target),
          from: o.target.from.address,
          attempt,
          waitingForS: Math.round((Date.now() - since) / 1000),
          retryInS: delayMs / 1000,
          err: err.message,
        },
        `Temporal is not reachable at ${o.target.address}; waiting for it`,
      );
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, delayMs);
      o.signal?.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', done);
        resolve();
      }
    });
  }
}

/** Resolves when a TCP connection to host:port opens; a TemporalUnreachableError naming the cause otherwise. */
function tcpReachable(address: string, timeoutMs = 3_000): Promise<void> {
  const host = address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const port = Number(address.match(/:(\d+)$/)?.[1] ?? 7233);
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host, port, timeout: timeoutMs });
    const fail = (why: string) => {
      socket.destroy();
      reject(new TemporalUnreachableError(`cannot connect to Temporal at ${address}: ${why}`));
    };
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('timeout', () => fail(`no answer within ${timeoutMs / 1000} s`));
    socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
  });
}
