import type { NodeSSH } from 'node-ssh';
import { command } from './quote';

export interface RemoteResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

export class RemoteCommandError extends Error {
  constructor(
    readonly nodeName: string,
    readonly commandLine: string,
    readonly result: RemoteResult,
  ) {
    const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join(' | ');
    super(`on node "${nodeName}": \`${commandLine}\` exited ${result.code}: ${detail || '(no output)'}`);
    this.name = 'RemoteCommandError';
  }
}

/** Runs one quoted argument vector on the node; throws RemoteCommandError on a non-zero exit unless allowFailure. */
export async function runOnNode(
  ssh: NodeSSH,
  nodeName: string,
  argv: readonly string[],
  options: { allowFailure?: boolean; stdin?: string } = {},
): Promise<RemoteResult> {
  const line = command(argv);
  const r = await ssh.execCommand(line, { stdin: options.stdin });
  const result = { stdout: r.stdout, stderr: r.stderr, code: r.code };
  if (!options.allowFailure && r.code !== 0) throw new RemoteCommandError(nodeName, line, result);
  return result;
}
