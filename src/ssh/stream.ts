import type { NodeSSH } from 'node-ssh';
import { Writable, type Readable } from 'node:stream';
import { command } from './quote';
import { RemoteCommandError } from './run';

export interface RemoteStream {
  /** The command's stdout, with backpressure (SSH window). */
  stdout: Readable;
  /** The command's stdin (for uploads to the node): a plain Writable whose end() sends EOF. */
  stdin: Writable;
  /** Resolves when the command exits 0 (with its stdout when direction is 'to-node'); rejects with RemoteCommandError otherwise. */
  done: Promise<string>;
  /** Closes the channel (on cancellation). */
  close(): void;
}

/**
 * Runs one quoted argument vector and hands back its streams, for transfers too large to buffer. With
 * `direction: 'to-node'` the command's stdout is drained (a stream nobody reads never ends, and the command's exit
 * would never be seen) and stdin is wrapped so a pipeline into it completes when the data is written.
 */
export async function streamOnNode(
  ssh: NodeSSH,
  nodeName: string,
  argv: readonly string[],
  direction: 'from-node' | 'to-node' = 'from-node',
): Promise<RemoteStream> {
  const line = command(argv);
  const connection = ssh.connection;
  if (!connection) throw new Error(`SSH connection to node "${nodeName}" is not open`);
  return new Promise((resolve, reject) => {
    connection.exec(line, (err, channel) => {
      if (err) return reject(err);
      let stderr = '';
      let stdout = '';
      channel.stderr.on('data', (d: Buffer) => {
        if (stderr.length < 64 * 1024) stderr += d.toString('utf8');
      });
      const done = new Promise<string>((res, rej) => {
        let code: number | null = null;
        channel.on('exit', (c: number | null) => {
          code = c;
        });
        channel.on('close', () => {
          if (code === 0) res(stdout);
          else rej(new RemoteCommandError(nodeName, line, { stdout, stderr, code }));
        });
      });
      done.catch(() => undefined); // observed by the caller; avoid an unhandled rejection if it never awaits
      if (direction === 'to-node') {
        // Nobody else reads it: keep the (small) output, so the command's end is seen and its result is available.
        channel.on('data', (d: Buffer) => {
          if (stdout.length < 64 * 1024) stdout += d.toString('utf8');
        });
      }
      const stdin = new Writable({
        write: (chunk: Buffer, _enc, cb) => void channel.write(chunk, cb),
        final: (cb) => {
          channel.end();
          cb();
        },
      });
      resolve({ stdout: channel, stdin, done, close: () => channel.close() });
    });
  });
}
