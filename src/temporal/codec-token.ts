import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/schema';
import { resolveSecret } from '../secrets';
import { isLoopback, MIN_TOKEN_LENGTH } from './codec-server';

/** Where the token came from: the config, or a file of this machine's data dir (its path is safe to print). */
export interface CodecToken {
  token: string;
  file?: string;
}

/**
 * The codec server's token: `temporal.codecServer.token` when set. Without it, on loopback only, a generated one kept
 * in `<dataDir>/codec-server.token` (0600, reused across restarts so a UI pointed at it once keeps working); the token
 * is never printed, only the file's path. Beyond loopback a token must be configured: others on the network would
 * otherwise have nothing to present, and a generated one would not reach them.
 */
export async function codecServerToken(config: Config, o: { listen: string; host: string; dataDir: string }): Promise<CodecToken> {
  const ref = config.temporal.codecServer?.token;
  if (ref) {
    const token = (await resolveSecret(ref, 'temporal.codecServer.token')).toString('utf8').trim();
    if (token.length < MIN_TOKEN_LENGTH)
      throw new Error(`temporal.codecServer.token: at least ${MIN_TOKEN_LENGTH} characters (e.g. openssl rand -base64 32)`);
    return { token };
  }
  if (!isLoopback(o.host))
    throw new Error(
      `temporal.codecServer.token: required to listen on ${o.listen}, beyond loopback; set it to a secret reference ` +
        `({ env: LIFEBOAT_CODEC_TOKEN } or { file: /etc/lifeboat/codec.token }) and give its callers the same token`,
    );
  return { token: await localToken(o.dataDir), file: join(o.dataDir, 'codec-server.token') };
}

async function localToken(dir: string): Promise<string> {
  const file = join(dir, 'codec-server.token');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const fresh = randomBytes(32).toString('base64url');
  try {
    await writeFile(file, `${fresh}\n`, { flag: 'wx', mode: 0o600 });
    return fresh;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const { mode } = await stat(file);
  if (mode & 0o077)
    throw new Error(`${file}: readable by others (mode ${(mode & 0o777).toString(8)}); delete it for a new token, or chmod 600 it`);
  const token = (await readFile(file, 'utf8')).trim();
  if (token.length < MIN_TOKEN_LENGTH)
    throw new Error(`${file}: not a token (under ${MIN_TOKEN_LENGTH} characters); delete it for a new one`);
  return token;
}
