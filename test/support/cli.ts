import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../../src/config/schema';

export const compiledCli = join(__dirname, '../../dist/src/cli/main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The compiled CLI as a user runs it (`node dist/src/cli/main.js ...`), as a child process; never throws on exit codes. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  if (!existsSync(compiledCli)) throw new Error(`${compiledCli} is missing: run \`npm run build\` (npm test does)`);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [compiledCli, ...args],
      { env: { ...process.env, LIFEBOAT_CONFIG: '', ...options.env }, timeout: options.timeoutMs ?? 300_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The worker's own config written as a file for the CLI (JSON is YAML), so both talk to the same queue, bucket and keys. */
export async function cliConfigFile(dir: string, config: Config): Promise<string> {
  const file = join(dir, 'lifeboat.yaml');
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}
