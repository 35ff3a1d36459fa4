import { connect, createServer, type Socket } from 'node:net';

export interface SlowLink {
  /** The loopback port to reach the target through. */
  port: number;
  close(): Promise<void>;
}

/**
 * A slow link to `host:port`: a relay on a loopback port that hands on every chunk `delayMs` after it arrived, each
 * way, in order, so every round trip through it takes 2 × `delayMs` longer. A relay rather than `tc qdisc ... netem`:
 * the test machines' kernel has no netem (nor prio) qdisc.
 */
export async function slowLink(host: string, port: number, delayMs: number): Promise<SlowLink> {
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  // Same delay for every chunk, so timers fire in arrival order; an end follows the data before it.
  const relay = (from: Socket, to: Socket) => {
    from.on('data', (chunk) => setTimeout(() => to.write(chunk), delayMs));
    from.on('end', () => setTimeout(() => to.end(), delayMs));
    from.on('error', () => to.destroy());
  };
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const target = connect({ host, port, allowHalfOpen: true });
    track(client);
    track(target);
    relay(client, target);
    relay(target, client);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface StallingLink {
  /** The loopback port to reach the target through. */
  port: number;
  /** Set once the matching response has been held. */
  stalled(): boolean;
  close(): Promise<void>;
}

/**
 * A link that stalls one transfer mid-way, as a store behind a dying load balancer does: a relay that passes
 * everything until a request naming `match` goes through, hands on the first `afterBytes` of what comes back on that
 * connection, then holds the rest (the connection stays open, nothing more arrives).
 */
export async function stallingLink(host: string, port: number, match: string, afterBytes: number): Promise<StallingLink> {
  const sockets = new Set<Socket>();
  let stalled = false;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const server = createServer((client) => {
    const target = connect({ host, port });
    track(client);
    track(target);
    let armed = false;
    let passed = 0;
    client.on('data', (chunk: Buffer) => {
      if (chunk.toString('latin1').includes(match)) armed = true;
      target.write(chunk);
    });
    target.on('data', (chunk: Buffer) => {
      if (!armed) return void client.write(chunk);
      const left = afterBytes - passed;
      if (left > 0) client.write(chunk.subarray(0, left));
      passed += chunk.length;
      if (passed >= afterBytes) {
        stalled = true;
        target.pause();
      }
    });
    client.on('close', () => target.destroy());
    target.on('close', () => client.destroy());
    client.on('error', () => target.destroy());
    target.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    stalled: () => stalled,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
