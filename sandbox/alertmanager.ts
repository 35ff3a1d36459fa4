import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { freePort, startProcess, waitFor, type ManagedProcess } from '../src/devserver/processes';

/**
 * A real Alertmanager (Debian's `prometheus-alertmanager`) on loopback, with one webhook receiver: the test bed's
 * stand-in for the Alertmanager that calls lifeboat's alert receiver.
 */
export interface AlertmanagerOptions {
  /** A directory of its own (created if missing, must be empty): config, data, log. stop() removes it. */
  dir: string;
  /** Where every notification goes (webhook_configs[].url). */
  webhookUrl: string;
  /** Sent as `Authorization: Bearer <file contents>` (http_config.authorization.credentials_file). */
  bearerTokenFile?: string;
  groupWait?: string;
  groupInterval?: string;
  repeatInterval?: string;
  /** Binaries, by default the names Debian's package puts on PATH. */
  binary?: string;
  amtool?: string;
}

export interface AlertmanagerServer {
  /** http://127.0.0.1:<port> */
  url: string;
  dir: string;
  configFile: string;
  logFile: string;
  process: ManagedProcess;
  /** Kills it and removes its directory (kept with LIFEBOAT_KEEP_TMP or LIFEBOAT_KEEP_SANDBOX). */
  stop(): Promise<void>;
}

/** The Alertmanager configuration startAlertmanager writes: one route grouped by alertname and cluster, one webhook. */
export function alertmanagerConfig(options: Omit<AlertmanagerOptions, 'dir' | 'binary' | 'amtool'>): Record<string, unknown> {
  const webhook: Record<string, unknown> = { url: options.webhookUrl, send_resolved: true };
  if (options.bearerTokenFile) {
    webhook.http_config = { authorization: { type: 'Bearer', credentials_file: resolve(options.bearerTokenFile) } };
  }
  return {
    route: {
      receiver: 'lifeboat',
      group_by: ['alertname', 'cluster'],
      group_wait: options.groupWait ?? '1s',
      group_interval: options.groupInterval ?? '2s',
      repeat_interval: options.repeatInterval ?? '1h',
    },
    receivers: [{ name: 'lifeboat', webhook_configs: [webhook] }],
  };
}

export async function startAlertmanager(options: AlertmanagerOptions): Promise<AlertmanagerServer> {
  const binary = options.binary ?? 'prometheus-alertmanager';
  const amtool = options.amtool ?? 'amtool';
  const dir = await ownDir(options.dir);
  const configFile = join(dir, 'alertmanager.yml');
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'alertmanager.log');
  const removeDir = () => (keepDirs() ? Promise.resolve() : rm(dir, { recursive: true, force: true }));
  try {
    await run(binary, ['--version'], 'Alertmanager (Debian package prometheus-alertmanager)');
    await mkdir(dataDir);
    await writeFile(configFile, stringify(alertmanagerConfig(options)));
    const check = await run(amtool, ['check-config', configFile], 'amtool (Debian package prometheus-alertmanager)');
    if (check.code !== 0) throw new Error(`amtool check-config ${configFile} failed:\n${check.output}`);
  } catch (err) {
    await removeDir();
    throw err;
  }

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = startProcess(
    'alertmanager',
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=', // no gossip: a single instance
    ],
    { logFile },
  );
  const stop = async () => {
    await proc.stop();
    await removeDir();
  };
  try {
    await untilReady(proc, `Alertmanager on ${url}`, logFile, async () => (await fetch(`${url}/-/ready`)).ok);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, dir, configFile, logFile, process: proc, stop };
}

// --- shared with prometheus.ts --------------------------------------------------------------------------------------

/** LIFEBOAT_KEEP_TMP / LIFEBOAT_KEEP_SANDBOX keep the servers' directories for a look, as scripts/test.sh does. */
export function keepDirs(): boolean {
  return Boolean(process.env.LIFEBOAT_KEEP_TMP || process.env.LIFEBOAT_KEEP_SANDBOX);
}

/** Creates `dir` and makes sure it holds nothing of anyone else's, since stop() removes it. */
export async function ownDir(dir: string): Promise<string> {
  const abs = isAbsolute(dir) ? dir : resolve(dir);
  await mkdir(abs, { recursive: true });
  const entries = await readdir(abs);
  if (entries.length) throw new Error(`${abs} is not empty: give the server a directory of its own (stop() removes it)`);
  return abs;
}

/** Runs a command to its end; a missing binary is an error that says which package provides it. */
export function run(file: string, args: string[], what: string): Promise<{ code: number; output: string }> {
  return new Promise((resolvePromise, reject) => {
    execFile(file, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`cannot run ${file}: ${err.message}; install ${what} (scripts/servers.sh installs it)`));
        return;
      }
      resolvePromise({ code: err ? (err.code as number) : 0, output: `${stdout}${stderr}` });
    });
  });
}

/** Waits for ready() while the process lives; an early exit or a timeout ends with the tail of its log. */
export async function untilReady(
  proc: ManagedProcess,
  what: string,
  logFile: string,
  ready: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  let done = false;
  const exitedEarly = proc.exited.then((code) => {
    if (!done) throw new Error(`${what}: the process exited (code ${code}) before it was ready`);
  });
  exitedEarly.catch(() => undefined); // handled through the race below
  try {
    await Promise.race([waitFor(what, async () => done || (await ready()), timeoutMs, 100), exitedEarly]); // done: stop polling
  } catch (err) {
    const log = await readFile(logFile, 'utf8').catch(() => '');
    const tail = log.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${(err as Error).message}\n--- last lines of ${logFile} ---\n${tail}`, { cause: err });
  } finally {
    done = true;
  }
}
