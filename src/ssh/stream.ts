import type { NodeSSH } from 'node-ssh';
import { Readable, Writable } from 'node:stream';
import { command } from './quote';
import { RemoteCommandError } from './run';

export interface RemoteStream {
  /** The command's stdout, with backpressure (SSH window). */
  stdout: Readable;
  /** The command's stdin (for uploads to the node): a plain Writable whose end() sends EOF. */
  stdin: Writable;
  /** Resolves when the command exits 0 (with its stdout when direction is 'to-node'); rejects with RemoteCommandError otherwise. */
  done: Promise<string>;
  /**
   * Stops the command early (on failure or cancellation): closes the channel and throws away whatever output already
   * arrived, so the channel ends, `done` settles and the connection can be disposed.
   */
  close(): void;
}

/**
 * Runs one quoted argument vector and hands back its streams, for transfers too large to buffer. With
 * `direction: 'to-node'` the command's stdout is drained (a stream nobody reads never ends, and the command's exit
 * would never be seen) and stdin is wrapped so a pipeline into it completes when the data is written.
 *
 * With `direction: 'from-node'`, stdout is a plain Readable fed from the channel, not ssh2's channel itself: the
 * channel's destroy() only sends CHANNEL_CLOSE (the stream is never destroyed), and ssh2 emits its 'end' and 'close'
 * only once every byte that already arrived has been read. A consumer that stops early — a pipeline torn down because
 * the upload failed, or was cancelled — leaves up to two SSH windows (4 MiB) unread in it, so neither event ever
 * comes; since Node 22 stream.pipeline waits for every stream's end before it settles, and it waited forever (the
 * backup's upload attempt hung, ignoring cancellation, and the worker could never drain). This Readable is destroyed
 * like any other, and destroying it closes the channel and discards what is left.
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
      let connectionLost: (err: Error) => void = () => undefined;
      const done = new Promise<string>((res, rej) => {
        connectionLost = rej;
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
      // Throw away whatever arrives from now on: the channel then ends, ssh2 emits 'close' and `done` settles.
      const discard = () => {
        try {
          channel.close();
        } catch {
          // The connection is gone: ssh2 throws on writing to it ("Instance unusable"), and there is nothing to close.
          // Thrown from a stream's destroy(), it left that stream never closing, and the pipeline around it hung.
        }
        channel.unpipe();
        channel.resume();
      };
      let output: Readable = channel;
      if (direction === 'from-node') {
        const out = new Readable({
          // The channel's own buffer holds an SSH window (2 MiB); this one only passes chunks on.
          highWaterMark: 64 * 1024,
          read: () => void channel.resume(),
          destroy: (error, callback) => {
            discard();
            callback(error);
          },
        });
        channel.on('data', (d: Buffer) => {
          // Backpressure: pausing the channel stops ssh2 from widening the window, so the node stops sending.
          if (!out.push(d) && !out.destroyed) channel.pause();
        });
        channel.on('end', () => out.push(null));
        channel.on('error', (e: Error) => out.destroy(e));
        output = out;
      }
      // A connection that dies (the node's sshd killed, a keepalive timeout) ends ssh2's channels as if the command had
      // ended, or not at all when one is paused: fail the transfer at once, and say why.
      const onConnectionLost = () => {
        const err = new Error(`the SSH connection to node "${nodeName}" closed while the command ran`);
        connectionLost(err);
        if (output !== channel) output.destroy(err);
        stdin.destroy(err);
      };
      // Whoever reads or writes them sees that error; with nobody attached yet it must not be an unhandled 'error'
      // event, which would end the worker's process.
      if (output !== channel) output.on('error', () => undefined);
      stdin.on('error', () => undefined);
      connection.once('close', onConnectionLost);
      connection.once('end', onConnectionLost);
      channel.once('close', () => {
        connection.off('close', onConnectionLost);
        connection.off('end', onConnectionLost);
      });
      // Destroyed with an error: a pipeline whose source had already ended (the command exited, its last bytes not yet
      // read) and is then destroyed without one never settles (Node 24), and the attempt waited on it forever.
      const close = () => (output === channel ? discard() : output.destroy(new Error(`the transfer from node "${nodeName}" was stopped`)));
      resolve({ stdout: output, stdin, done, close });
    });
  });
}
