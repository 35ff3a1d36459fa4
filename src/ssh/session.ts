import type { NodeSSH } from 'node-ssh';
import { findCluster, findNode } from '../config/load';
import type { ClusterConfig, Config, NodeConfig } from '../config/schema';
import { connectToNode } from './connect';
import { forwardToNode, type Forward } from './forward';
import { runOnNode, type RemoteResult } from './run';
import { streamOnNode, type RemoteStream } from './stream';

export interface RunOptions {
  /** A non-zero exit is returned, not thrown (RemoteCommandError). */
  allowFailure?: boolean;
  /** Sent to the command's stdin (small inputs: file contents, "<name> <base64>" lines). */
  stdin?: string;
}

/**
 * The one way the engine works on a node: an SSH session with the node's host key checked against its pin, where
 * every command is an argument vector quoted for the remote shell (nothing from config or input is pasted into shell
 * code). Opened by withSession, which closes it however the body ends and when `signal` aborts (an activity's
 * cancellation): a command in flight then fails at once instead of running on after nobody waits for it.
 */
export interface NodeSession {
  readonly node: NodeConfig;
  /** Runs a command to its end; its output is buffered (use stream for large transfers). */
  run(argv: readonly string[], options?: RunOptions): Promise<RemoteResult>;
  /** True when the path exists on the node (`test -e`). */
  exists(path: string): Promise<boolean>;
  /** A command's streams, for transfers too large to buffer: `from-node` reads its stdout, `to-node` writes its stdin. */
  stream(argv: readonly string[], direction?: 'from-node' | 'to-node'): Promise<RemoteStream>;
  /** A worker loopback address reaching `<host>:<port>` as the node sees it (127.0.0.1 by default) through this session (closed with it). */
  forward(port: number, host?: string): Promise<Forward>;
}

export interface SessionOptions {
  signal?: AbortSignal;
  readyTimeoutMs?: number;
}

function sessionOn(ssh: NodeSSH, node: NodeConfig, forwards: Forward[]): NodeSession {
  const run = (argv: readonly string[], options: RunOptions = {}) => runOnNode(ssh, node.name, argv, options);
  return {
    node,
    run,
    exists: async (path) => (await run(['test', '-e', path], { allowFailure: true })).code === 0,
    stream: (argv, direction = 'from-node') => streamOnNode(ssh, node.name, argv, direction),
    forward: async (port, host) => {
      const f = await forwardToNode(ssh, node.name, port, host);
      forwards.push(f);
      return f;
    },
  };
}

/** Opens a session to the node for the body and always closes it (also when `signal` aborts mid-way). */
export async function withSession<T>(node: NodeConfig, body: (s: NodeSession) => Promise<T>, options: SessionOptions = {}): Promise<T> {
  const ssh = await connectToNode(node, options);
  const onAbort = () => ssh.dispose();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const forwards: Forward[] = [];
  try {
    return await body(sessionOn(ssh, node, forwards));
  } catch (err) {
    // Closed because the activity was cancelled: say that (the SDK's CancelledFailure), not ssh2's "Not connected".
    if (options.signal?.aborted && options.signal.reason instanceof Error) throw options.signal.reason;
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await Promise.all(forwards.map((f) => f.close()));
    ssh.dispose();
  }
}

export interface ClusterNodeSession extends NodeSession {
  cluster: ClusterConfig;
}

/** A session on a cluster's node named in the config (the first node when `nodeName` is omitted). */
export async function withClusterNode<T>(
  config: Config,
  clusterName: string,
  nodeName: string | undefined,
  body: (s: ClusterNodeSession) => Promise<T>,
  options: SessionOptions = {},
): Promise<T> {
  const cluster = findCluster(config, clusterName);
  const node = nodeName ? findNode(cluster, nodeName) : cluster.nodes[0];
  return withSession(node, (s) => body({ ...s, cluster }), options);
}
