import { NodeSSH } from 'node-ssh';
import type { NodeConfig } from '../config/schema';
import { resolveSecret } from '../secrets';
import { expectedFingerprints, fingerprint, HostKeyMismatchError, type HostKeyPin } from './host-key';

export interface ConnectOptions {
  readyTimeoutMs?: number;
  signal?: AbortSignal;
}

/** An SSH error that retrying cannot fix; activities turn it into a non-retryable failure. */
export class SshAuthError extends Error {
  constructor(nodeName: string, endpoint: string, detail: string) {
    super(
      `SSH login to node "${nodeName}" (${endpoint}) refused: ${detail}. Check user and privateKey for this node in the config and the node's authorized_keys.`,
    );
    this.name = 'SshAuthError';
  }
}

function pinOf(node: NodeConfig): HostKeyPin {
  if (node.hostKey) return { hostKey: node.hostKey };
  if (node.knownHostsFile) return { knownHostsFile: node.knownHostsFile };
  throw new Error(`node "${node.name}": no hostKey or knownHostsFile (config validation should have refused this)`);
}

/**
 * Opens an SSH session to a node with its host key checked against the pin in config, before any command runs.
 * The caller owns the connection and must dispose() it.
 */
export async function connectToNode(node: NodeConfig, options: ConnectOptions = {}): Promise<NodeSSH> {
  const endpoint = `${node.host}:${node.port}`;
  const expected = await expectedFingerprints(pinOf(node), node.host, node.port);
  let presented: string | undefined;
  const ssh = new NodeSSH();
  const privateKey = node.privateKey ? (await resolveSecret(node.privateKey, `nodes.${node.name}.privateKey`)).toString('utf8') : undefined;
  const onAbort = () => ssh.dispose();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await ssh.connect({
      host: node.host,
      port: node.port,
      username: node.user,
      privateKey,
      agent: privateKey ? undefined : process.env.SSH_AUTH_SOCK,
      readyTimeout: options.readyTimeoutMs ?? 20_000,
      keepaliveInterval: 10_000,
      hostVerifier: (key: Buffer) => {
        presented = fingerprint(key);
        return expected.includes(presented);
      },
    });
  } catch (err) {
    ssh.dispose();
    if (presented !== undefined && !expected.includes(presented)) throw new HostKeyMismatchError(node.name, endpoint, expected, presented);
    const message = (err as Error).message ?? String(err);
    if (/authentication methods failed|All configured authentication/i.test(message)) throw new SshAuthError(node.name, endpoint, message);
    throw new Error(`cannot reach node "${node.name}" over SSH (${endpoint}): ${message}`, { cause: err });
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  // node-ssh listens for the connection's errors only while connecting. One after that (the node's sshd killed, a
  // write to a reset socket: EPIPE) would be an 'error' event nobody handles, which ends the worker's process; closing
  // the connection instead ends its channels, and the step using them fails (and is retried) like any broken transfer.
  ssh.connection?.on('error', () => ssh.dispose());
  return ssh;
}
