import { homedir } from 'node:os';
import { join } from 'node:path';

/** This machine's lifeboat state (the dev server's database and logs, the codec server's token): $XDG_DATA_HOME/lifeboat. */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_DATA_HOME || join(homedir(), '.local/share'), 'lifeboat');
}
