import type { NodeSSH } from 'node-ssh';
import { command } from './quote';

export interface RemoteResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

export class RemoteCommandError extends Error {
  /** How it ended, in the command's own words: its exit code and last lines of output (not its command line). */
  readonly outcome: string;
  constructor(
    readonly nodeName: string,
    readonly commandLine: string,
    readonly result: RemoteResult,
  ) {
    const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join(' | ');
    const outcome = `exited ${result.code}: ${detail || '(no output)'}`;
    super(`on node "${nodeName}": \`${commandLine}\` ${outcome}`);
    this.name = 'RemoteCommandError';
    this.outcome = outcome;
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
