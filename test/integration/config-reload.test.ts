import { readFile, writeFile } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { loadConfigFile } from '../../src/config/load';
import { clusterSchema } from '../../src/config/schema';
import { waitFor, type ManagedProcess } from '../../src/devserver/processes';
import { connectClient } from '../../src/temporal/connect';
import { backupCluster } from '../../workflows';
import { minioStorage } from '../support/bed';
import { workerProcess } from '../support/worker-process';

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMbq1c5ZQk6pVZr0yQdX3f0b2m5M6mKk0B8w3o3W2w2a';
const clusterNamed = (name: string) => ({
  name,
  nodes: [{ name: 'cp1', host: '127.0.0.1', port: 1, hostKey: HOST_KEY }],
  storage: minioStorage('reload'),
});

/**
 * `kill -HUP <worker>` reads the config file again (src/config/reload.ts): a cluster added to a fleet's config is
 * served by the running worker, with no restart to cut running steps off; a config that does not validate is
 * refused and the one in force stays.
 */
describe('config reload (SIGHUP)', () => {
  let worker: ManagedProcess;
  let client: Client;
  let closeClient: () => Promise<void>;
  let configFile: string;
  let taskQueue: string;
  const logged = async (msg: string) =>
    (await readFile(worker.logFile, 'utf8'))
      .split('\n')
      .filter((l) => l.includes(`"msg":"${msg}`))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeAll(async () => {
    const p = await workerProcess('reload', [clusterSchema.parse(clusterNamed('a'))], undefined);
    ({ configFile, taskQueue } = p);
    worker = p.launch();
    ({ client, close: closeClient } = await connectClient(await loadConfigFile(configFile)));
    await waitFor('the worker to start', async () => (await logged('worker started')).length > 0, 60_000, 200);
  });
  afterAll(async () => {
    await worker?.stop();
    await closeClient?.();
  });

  it('a cluster added to the file is served by the running worker; a broken config is refused and the one in force stays', async () => {
    const backupOf = (cluster: string) =>
      causes(client.workflow.execute(backupCluster, { taskQueue, workflowId: `reload-${cluster}-${Date.now()}`, args: [{ cluster }] }));
    // The worker's config has no cluster b: a backup of it fails at its first step.
    expect(await backupOf('b')).toMatch(/unknown cluster "b"/);

    const file = parse(await readFile(configFile, 'utf8')) as { clusters: unknown[] };
    await writeFile(configFile, stringify({ ...file, clusters: [...file.clusters, clusterNamed('b')] }));
    worker.child.kill('SIGHUP');
    await waitFor('the reload', async () => (await logged('config reloaded')).length > 0, 30_000, 200);
    expect((await logged('config reloaded'))[0]).toMatchObject({ added: ['b'], removed: [], changed: [], atRestart: [] });
    // The same process now knows b, and stops at b's own problem: no encryption key (the plan step's permanent failure).
    const known = await backupOf('b');
    expect(known).toMatch(/no encryption key set/);
    expect(known).not.toMatch(/unknown cluster/);

    // A config that does not validate: refused, named, and the one in force stays (b is still known).
    await writeFile(configFile, `clusterz: []\n`);
    worker.child.kill('SIGHUP');
    await waitFor('the refusal', async () => (await logged('config reload refused')).length > 0, 30_000, 200);
    expect(JSON.stringify((await logged('config reload refused'))[0].problems)).toMatch(/clusterz/);
    expect(await backupOf('b')).toMatch(/no encryption key set/);
    expect(worker.child.exitCode).toBeNull(); // the same process throughout
  });

  /** The messages of a failed run's error and its causes (the activity's, its application failure's). */
  async function causes(run: Promise<unknown>): Promise<string> {
    const messages: string[] = [];
    for (
      let e = (await run.then(
        () => undefined,
        (err: unknown) => err,
      )) as Error | undefined;
      e;
      e = e.cause as Error | undefined
    )
      messages.push(e.message);
    return messages.join(' / ');
  }
});
