import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { parseConfig } from '../../src/config/load';
import { serverBinaries } from '../../src/devserver/binaries';
import { temporalTarget } from '../../src/temporal/connection';
import { OUTCOME } from '../../src/temporal/search-attributes';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { etcdctlArgs } from '../../sandbox/control-plane';
import { minioClient, minioStorage } from '../support/bed';
import { directModeOf, keyFile, runBackup, withBackup } from '../support/backups';
import { runCli } from '../support/cli';
import { registerNamespace, startTemporalOnPostgres, type TemporalOnPostgres } from '../support/temporal-postgres';
import { startTestWorker, type RunningWorker } from '../support/worker';

const BUCKET = 'lifeboat-pg';

/** Polls SQL visibility (written asynchronously) until the query returns `count` runs. */
async function listUntil(client: Client, query: string, count: number): Promise<WorkflowExecutionInfo[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const runs: WorkflowExecutionInfo[] = [];
    for await (const w of client.workflow.list({ query })) runs.push(w);
    if (runs.length >= count || Date.now() > deadline) return runs;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * The engine against a real Temporal server (v1.29.1, the compose file's) on PostgreSQL, set up the documented way
 * (test/support/temporal-postgres.ts), instead of the dev server every other file shares: the namespace preparation
 * commands, search attributes on SQL visibility, and one real backup run by a real worker.
 */
describe('a real Temporal server on PostgreSQL', () => {
  let temporal: TemporalOnPostgres;
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  const s3 = minioClient();
  const env = () => ({ TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: 'default' });

  beforeAll(async () => {
    const key = await keyFile();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    // The server and the sandbox come up side by side; each is kept as soon as it is up, so afterAll stops it even if
    // the other failed.
    const [server, sandbox] = await Promise.allSettled([
      startTemporalOnPostgres().then((t) => (temporal = t)),
      createSandboxCluster({ name: 'pg', etcdLine: '3.5', withApiserver: false, storage: minioStorage(BUCKET) }).then((c) => (cluster = c)),
    ]);
    for (const r of [server, sandbox]) if (r.status === 'rejected') throw r.reason;
    for (let i = 0; i < 3; i++)
      await cluster.controlPlane.exec(['etcdctl', ...etcdctlArgs(), 'put', `/registry/configmaps/default/cm-${i}`, `v${i}`]);
    // Direct mode, the cheapest real backup: the worker streams etcd's snapshot with its own etcdctl.
    const config = withBackup(cluster, { encryptionKey: 'k1', compression: 'none' });
    const direct = await directModeOf(cluster, '3.5');
    const target = await temporalTarget(parseConfig({ temporal: { address: temporal.address } }, 'test config'), {});
    worker = await startTestWorker(
      [{ ...config, etcd: { ...config.etcd, direct } }],
      { encryptionKeys: { k1: { file: key.path } } },
      { target },
    );
  });
  afterAll(async () => {
    await worker?.stop();
    await Promise.all([cluster?.destroy(), temporal?.stop()]);
    s3.destroy();
  });

  it('`lifeboat temporal check` names what a fresh namespace lacks and the command that fixes it; after `temporal setup` it passes', async () => {
    const fresh = await runCli(['temporal', 'check'], { env: env() });
    expect(fresh.code).toBe(1);
    expect(fresh.stdout).toMatch(/^server: +Temporal 1\.29\.1$/m);
    expect(fresh.stdout).toMatch(/search attributes: 0\/3 present/);
    for (const name of ['LifeboatCluster', 'LifeboatRun', 'LifeboatOutcome']) expect(fresh.stdout).toContain(`missing ${name}`);
    expect(fresh.stdout).toContain('register them with `lifeboat temporal setup`');

    const setup = await runCli(['temporal', 'setup'], { env: env() });
    expect(setup.code).toBe(0);
    expect(setup.stdout.trim().split('\n').sort()).toEqual([
      'added    LifeboatCluster (Keyword)',
      'added    LifeboatOutcome (Keyword)',
      'added    LifeboatRun (Keyword)',
    ]);
    const check = await runCli(['temporal', 'check'], { env: env() });
    expect(check.stdout).toMatch(/search attributes: 3\/3 present/);
    expect(check.code).toBe(0);
  });

  it('a backup run by a real worker lands in the bucket, and SQL visibility finds it with the filters the UI sends', async () => {
    const result = await runBackup(worker.client, worker.taskQueue, 'pg');
    expect(result.manifestKey).toMatch(/\.json$/);
    const found = await listUntil(worker.client, `LifeboatCluster = "pg" AND LifeboatRun = "backup" AND ExecutionStatus = "Completed"`, 1);
    expect(found).toHaveLength(1);
    expect(found[0].type).toBe('backupCluster');
    expect(found[0].typedSearchAttributes.get(OUTCOME)).toBe('succeeded');
    // The UI's own filters: a workflow type, and a custom attribute that matches nothing.
    expect(await listUntil(worker.client, `WorkflowType = "backupCluster" AND LifeboatCluster = "pg"`, 1)).toHaveLength(1);
    expect(await listUntil(worker.client, `LifeboatCluster = "no-such-cluster"`, 0)).toEqual([]);
  });

  it('a second namespace registered later lacks the attributes until it is set up: `check` says so there, not on default', async () => {
    const { temporal: cli } = await serverBinaries();
    await registerNamespace(cli, temporal.address, 'team-b');
    const other = await runCli(['temporal', 'check'], { env: { ...env(), TEMPORAL_NAMESPACE: 'team-b' } });
    expect(other.code).toBe(1);
    expect(other.stdout).toMatch(/^namespace: team-b /m);
    expect(other.stdout).toContain('missing LifeboatCluster');
    expect((await runCli(['temporal', 'check'], { env: env() })).code).toBe(0);
  });
});
