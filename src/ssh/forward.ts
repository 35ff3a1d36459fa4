import { createServer, type Server, type Socket } from 'node:net';
import type { NodeSSH } from 'node-ssh';

/** A port on the worker's loopback that reaches a port of the node (its loopback by default) through the session's connection. */
export interface Forward {
  /** 127.0.0.1:<port> on the worker. */
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Listens on an ephemeral port of the worker's loopback and carries each connection to `<host>:<port>` as the node
 * reaches it (`127.0.0.1` by default) through the SSH connection (a direct-tcpip channel, as `ssh -L`): a server the
 * drill starts on the node's loopback, or etcd's client port, is reached without opening it to the network. Closed
 * with the session.
 */
export function forwardToNode(ssh: NodeSSH, nodeName: string, port: number, host = '127.0.0.1'): Promise<Forward> {
  const connection = ssh.connection;
  if (!connection) return Promise.reject(new Error(`SSH connection to node "${nodeName}" is not open`));
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    connection.forwardOut('127.0.0.1', 0, host, port, (err, channel) => {
      if (err) return socket.destroy();
      channel.on('error', () => socket.destroy());
      socket.pipe(channel).pipe(socket);
      socket.once('close', () => channel.close());
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port: local } = server.address() as { port: number };
      resolve({
        address: `127.0.0.1:${local}`,
        close: () =>
          new Promise<void>((res) => {
            for (const s of sockets) s.destroy();
            server.close(() => res());
          }),
      });
    });
  });
}
