import type { NodeSSH } from 'node-ssh';
import type { Readable, Writable } from 'node:stream';
import { command } from './quote';
import { RemoteCommandError } from './run';

export interface RemoteStream {
  /** The command's stdout, with backpressure (SSH window). */
  stdout: Readable;
  /** The command's stdin (for uploads to the node). */
  stdin: Writable;
  /** Resolves when the command exits 0; rejects with RemoteCommandError (stderr included) otherwise. */
  done: Promise<void>;
  /** Closes the channel (on cancellation). */
  close(): void;
}

/** Runs one quoted argument vector and hands back its streams, for transfers too large to buffer. */
export async function streamOnNode(ssh: NodeSSH, nodeName: string, argv: readonly string[]): Promise<RemoteStream> {
  const line = command(argv);
  const connection = ssh.connection;
  if (!connection) throw new Error(`SSH connection to node "${nodeName}" is not open`);
  return new Promise((resolve, reject) => {
    connection.exec(line, (err, channel) => {
      if (err) return reject(err);
      let stderr = '';
      channel.stderr.on('data', (d: Buffer) => {
        if (stderr.length < 64 * 1024) stderr += d.toString('utf8');
      });
      const done = new Promise<void>((res, rej) => {
        let code: number | null = null;
        channel.on('exit', (c: number | null) => {
          code = c;
        });
        channel.on('close', () => {
          if (code === 0) res();
          else rej(new RemoteCommandError(nodeName, line, { stdout: '', stderr, code }));
        });
      });
      done.catch(() => undefined); // observed by the caller; avoid an unhandled rejection if it never awaits
      resolve({ stdout: channel, stdin: channel, done, close: () => channel.close() });
    });
  });
}
