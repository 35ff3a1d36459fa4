import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from '../../src/devserver/processes';
import { Client, Connection, WorkflowFailedError, type WorkflowExecutionInfo } from '@temporalio/client';
import { msToTs } from '@temporalio/common';
import { CLUSTER, OUTCOME, RUN } from '../../src/temporal/search-attributes';
import { searchAttributeStatus, setupSearchAttributes } from '../../src/temporal/setup';
import { backupCluster, recoverCluster } from '../../workflows';
import { testBed } from '../support/bed';
import { startTestWorker, type RunningWorker } from '../support/worker';

/** Polls the visibility store (eventually consistent) until the query returns `count` runs. */
async function listUntil(client: Client, query: string, count: number): Promise<WorkflowExecutionInfo[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const runs: WorkflowExecutionInfo[] = [];
    for await (const w of client.workflow.list({ query })) runs.push(w);
    if (runs.length >= count || Date.now() > deadline) return runs;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A fresh namespace, once the frontend's namespace cache has it (it lacks the engine's search attributes). */
async function freshNamespace(connection: Connection, name: string): Promise<void> {
  await connection.workflowService.registerNamespace({ namespace: name, workflowExecutionRetentionPeriod: msToTs('1 day') });
  await waitFor(`namespace ${name}`, () => searchAttributeStatus(connection, name).catch(() => undefined), 30_000, 500);
}

const lifeboat = (args: string[], env: NodeJS.ProcessEnv) =>
  promisify(execFile)('node', [join(__dirname, '../../dist/src/cli/main.js'), ...args], {
    env: { ...process.env, LIFEBOAT_CONFIG: '', ...env },
  });

describe('search attributes', () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    // No cluster configured: every run ends at validation or at the plan step, without a node.
    worker = await startTestWorker([]);
  });
  afterAll(() => worker?.stop());

  it('labels every run with its cluster and kind at once and its outcome when it ends, so recoveries of a cluster can be listed', async () => {
    const { client, taskQueue } = worker;
    const cluster = `sa-${process.pid}-${Date.now().toString(36)}`;
    const start = <T>(p: Promise<T>) => p.catch((err: unknown) => err);
    // A recovery of a cluster the config does not have (fails at plan), one with a field the workflow refuses, a
    // backup of the same cluster and a recovery of another: only the first two are "recoveries of <cluster>".
    const results = await Promise.all([
      start(client.workflow.execute(recoverCluster, { taskQueue, workflowId: `recover-${cluster}`, args: [{ cluster, dryRun: true }] })),
      start(
        client.workflow.execute(recoverCluster, {
          taskQueue,
          workflowId: `${cluster}-r2`,
          args: [{ cluster, dryRun: true, ['$(reboot)' as 'reason']: 'x' }],
        }),
      ),
      start(client.workflow.execute(backupCluster, { taskQueue, workflowId: `${cluster}-b1`, args: [{ cluster }] })),
      start(
        client.workflow.execute(recoverCluster, {
          taskQueue,
          workflowId: `recover-${cluster}-x`,
          args: [{ cluster: `${cluster}-x`, dryRun: true }],
        }),
      ),
    ]);
    for (const r of results) expect(r).toBeInstanceOf(WorkflowFailedError);

    const recoveries = await listUntil(client, `LifeboatCluster = '${cluster}' AND LifeboatRun = 'recovery'`, 2);
    expect(recoveries.map((w) => w.workflowId).sort()).toEqual([`recover-${cluster}`, `${cluster}-r2`]);
    const outcomes = Object.fromEntries(recoveries.map((w) => [w.workflowId, w.typedSearchAttributes.get(OUTCOME)]));
    expect(outcomes).toEqual({ [`recover-${cluster}`]: 'failed', [`${cluster}-r2`]: 'invalid-input' });

    const backups = await listUntil(client, `LifeboatCluster = '${cluster}' AND LifeboatRun = 'backup'`, 1);
    expect(backups.map((w) => w.workflowId)).toEqual([`${cluster}-b1`]);
    expect(backups[0].typedSearchAttributes.get(CLUSTER)).toBe(cluster);
    expect(backups[0].typedSearchAttributes.get(RUN)).toBe('backup');

    // The human summary is in the memo of a valid start; a refused input's hostile strings are never echoed there.
    const r1 = await client.workflow.getHandle(`recover-${cluster}`).describe();
    expect(r1.memo).toEqual({ summary: `dry-run recovery of ${cluster} from latest (in-place)` });
    const r2 = await client.workflow.getHandle(`${cluster}-r2`).describe();
    expect(JSON.stringify(r2.memo)).not.toContain('reboot');
  });

  it('`temporal setup` registers the attributes on a namespace that lacks them, and a second run changes nothing', async () => {
    const connection = await Connection.connect({ address: testBed().temporalAddress });
    try {
      const namespace = `lifeboat-setup-${process.pid}-${Date.now().toString(36)}`;
      await freshNamespace(connection, namespace);
      const before = await searchAttributeStatus(connection, namespace);
      expect(before.missing.sort()).toEqual(['LifeboatCluster', 'LifeboatOutcome', 'LifeboatRun']);

      const first = await setupSearchAttributes(connection, namespace);
      expect(first.added.sort()).toEqual(['LifeboatCluster', 'LifeboatOutcome', 'LifeboatRun']);
      const second = await setupSearchAttributes(connection, namespace);
      expect(second).toEqual({ added: [], present: ['LifeboatCluster', 'LifeboatRun', 'LifeboatOutcome'], wrongType: [] });
      expect((await searchAttributeStatus(connection, namespace)).missing).toEqual([]);
    } finally {
      await connection.close();
    }
  });

  it('`lifeboat temporal setup` does the same from the command line, on the namespace of TEMPORAL_NAMESPACE', async () => {
    const { temporalAddress } = testBed();
    const connection = await Connection.connect({ address: temporalAddress });
    try {
      const namespace = `lifeboat-cli-${process.pid}-${Date.now().toString(36)}`;
      await freshNamespace(connection, namespace);
      const env = { TEMPORAL_ADDRESS: temporalAddress, TEMPORAL_NAMESPACE: namespace };
      const first = await lifeboat(['temporal', 'setup'], env);
      expect(first.stdout.trim().split('\n').sort()).toEqual([
        'added    LifeboatCluster (Keyword)',
        'added    LifeboatOutcome (Keyword)',
        'added    LifeboatRun (Keyword)',
      ]);
      const second = await lifeboat(['temporal', 'setup'], env);
      expect(second.stdout.trim().split('\n')).toEqual(['present  LifeboatCluster', 'present  LifeboatRun', 'present  LifeboatOutcome']);
      expect((await searchAttributeStatus(connection, namespace)).missing).toEqual([]);
    } finally {
      await connection.close();
    }
  });
});
