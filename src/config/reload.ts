import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { ConfigError, loadConfig } from './load';
import type { Config } from './schema';

/**
 * What a reload changes. The steps read the config when they run (a cluster, its nodes, storage and policies, the
 * key ring, drills): those changes apply to the next step of any run. What the worker set up at start (its Temporal
 * connection, task queues, payload encryption, the alert receiver's address, token and triggers) changes only at a
 * restart, and is named.
 */
export interface ConfigChanges {
  added: string[];
  removed: string[];
  changed: string[];
  /** Top-level sections that differ but are read only at start. */
  atRestart: string[];
}

const READ_AT_START = ['temporal', 'alerts'] as const;

export function configChanges(current: Config, next: Config): ConfigChanges {
  const before = new Map(current.clusters.map((c) => [c.name, c]));
  const after = new Map(next.clusters.map((c) => [c.name, c]));
  return {
    added: [...after.keys()].filter((n) => !before.has(n)),
    removed: [...before.keys()].filter((n) => !after.has(n)),
    changed: [...after.keys()].filter((n) => before.has(n) && !isDeepStrictEqual(before.get(n), after.get(n))),
    atRestart: READ_AT_START.filter((k) => !isDeepStrictEqual(current[k], next[k])),
  };
}

export interface LiveConfig {
  /** The config in force: steps read it when they run. */
  readonly current: Config;
  /** Reads the file again; a config that does not validate is refused and the one in force stays. */
  reload(): Promise<{ ok: true; changes: ConfigChanges } | { ok: false; problems: string[] }>;
}

/**
 * The worker's config, reloaded from its file on SIGHUP (`kill -HUP <pid>`), as sshd, nginx and Prometheus do: a
 * fleet's config changes (a cluster added, a node replaced, a policy tightened) without a restart that would cut
 * running steps off. `check` refuses a reload for any other reason than validity (the worker's task queues changing).
 */
export function liveConfig(
  path: string | undefined,
  initial: Config,
  logger: Logger,
  check: (next: Config) => string | undefined = () => undefined,
): LiveConfig & { watchHangup(): () => void } {
  let current = initial;
  const live = {
    get current() {
      return current;
    },
    async reload() {
      const next = await loadConfig(path).then(
        (c) => ({ config: c, problems: [check(c)].filter((p) => p !== undefined) }),
        (err: unknown) => ({ config: undefined, problems: err instanceof ConfigError ? err.problems : [(err as Error).message] }),
      );
      if (!next.config || next.problems.length) {
        logger.error({ config: path, problems: next.problems }, 'config reload refused: the worker keeps the config it has');
        return { ok: false as const, problems: next.problems };
      }
      const changes = configChanges(current, next.config);
      current = next.config;
      logger.info(
        { config: path, ...changes },
        changes.atRestart.length
          ? `config reloaded; ${changes.atRestart.join(' and ')} take effect when the worker restarts`
          : 'config reloaded',
      );
      return { ok: true as const, changes };
    },
    watchHangup() {
      const onHangup = () => void live.reload();
      process.on('SIGHUP', onHangup);
      return () => process.off('SIGHUP', onHangup);
    },
  };
  return live;
}
