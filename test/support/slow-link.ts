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
