import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { ClusterConfig } from '../../src/config/schema';
import { startProcess, type ManagedProcess } from '../../src/devserver/processes';
import { testBed } from './bed';

/**
 * The engine's worker as users run it — `lifeboat --config FILE worker`, the compiled CLI in its own process — so a
 * test can SIGKILL it mid-activity and start it again. One config file and task queue per call (several clusters, and
 * workers started for their sites with `launch(env, ['--site', ...])`, share them); no cluster, no key for a worker
 * that only has to run (e.g. to be scraped).
 */
export async function workerProcess(
  name: string,
  cluster: ClusterConfig | ClusterConfig[] | undefined,
  keyPath: string | undefined,
  extra: Record<string, unknown> = {},
): Promise<{ taskQueue: string; configFile: string; launch(env?: Record<string, string>, workerArgs?: string[]): ManagedProcess }> {
  const dir = await mkdtemp(join(tmpdir(), `lifeboat-${name}-`));
  const taskQueue = `${name}-${Date.now()}`;
  const configFile = join(dir, 'config.yaml');
  await writeFile(
    configFile,
    stringify({
      ...extra,
      temporal: { address: testBed().temporalAddress, taskQueue },
      ...(keyPath ? { encryptionKeys: { k1: { file: keyPath } } } : {}),
      clusters: cluster === undefined ? [] : [cluster].flat(),
    }),
  );
  const cli = join(__dirname, '../../dist/src/cli/main.js');
  return {
    taskQueue,
    configFile,
    launch: (env = {}, workerArgs = []) =>
      startProcess('worker', 'node', [cli, '--config', configFile, 'worker', ...workerArgs], {
        logFile: join(dir, 'worker.log'),
        env: { ...process.env, LOG_FORMAT: 'json', ...env },
      }),
  };
}
