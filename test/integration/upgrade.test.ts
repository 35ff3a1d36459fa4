import { temporal } from '@temporalio/proto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { Activities } from '../../activities';
import { claimHolder } from '../../activities/claim-holder';
import { parseConfig } from '../../src/config/load';
import { waitFor } from '../../src/devserver/processes';
import type { RecoveryPlan } from '../../src/recovery/plan';
import { payloadConverterPath } from '../../src/temporal/data-converter';
import { deploymentOptions, openRunsPinnedTo, setCurrentVersion, workerDeployment } from '../../src/temporal/deployment';
import { approveSignal, backupCluster, progressQuery, recoverCluster } from '../../workflows';
import { startStubWorker, workflowBundle } from '../support/worker';
import { runCli } from '../support/cli';
import { workerProcess } from '../support/worker-process';
import { engineVersion } from '../../src/version';
import { testBed } from '../support/bed';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * An upgrade while a recovery is in flight, with Worker Versioning on the real dev server: a recovery starts on version
 * A and waits for approval; version B (a bundle whose code differs, so its derived build id does) starts and becomes
 * current; the approved recovery finishes on A (every workflow task of its history completed by A), a new backup run
 * goes to B, A has no open run pinned to it and is stopped. Stub activities: what is under test is the routing.
 */

const plan = {
  cluster: 'upgrade',
  mode: 'in-place',
  node: 'cp1',
  host: '10.0.0.1',
  snapshot: { manifestKey: 'k.manifest.json', key: 'k.db', created: new Date().toISOString(), revision: 5, totalKeys: 1 },
  skipped: [],
  steps: [],
  paths: { dataDir: '/var/lib/etcd', restoreDir: '/var/lib/etcd.restored-r', asideManifestsDir: '/work/r/manifests-before' },
  tool: { command: 'etcdutl', kind: 'etcdutl', version: '3.6.0', bumpRevision: true },
} as unknown as RecoveryPlan;

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
const COMPLETED = temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED;

/** The build id of the worker that completed each workflow task of a history, in order. */
function completedBy(history: History): string[] {
  return (history.events ?? [])
    .filter((e) => e.eventType === COMPLETED)
    .map((e) => e.workflowTaskCompletedEventAttributes?.deploymentVersion?.buildId ?? '(none)');
}

describe('an upgrade while a recovery is in flight (Worker Versioning, real dev server)', () => {
  const deploymentName = `lifeboat-upgrade-${process.pid}`;
  const taskQueue = `upgrade-${process.pid}`;
  // Its own cluster name: a recovery's workflow id is recover-<cluster>, and other files recover `c`.
  const cluster = `upgrade-${process.pid}`;
  const stops: (() => Promise<void>)[] = [];
  let client: Client;
  let configFile: string;
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-upgrade-'));
    stops.push(() => rm(dir, { recursive: true, force: true }));
    configFile = join(dir, 'lifeboat.yaml');
    await writeFile(
      configFile,
      JSON.stringify({ temporal: { address: testBed().temporalAddress, taskQueue, deployment: { name: deploymentName } } }),
    );
  });

  const stubs = (version: string, calls: string[]): Partial<Activities> => ({
    resolveCluster: async ({ cluster }) => ({ name: cluster, nodes: ['cp1'] }),
    planRecovery: async () => plan,
    pauseBackups: async () => ({ paused: true, existed: true, scheduleId: 'backup-c' }),
    resumeBackups: async () => undefined,
    fetchSnapshot: async () => (calls.push(`${version}:fetchSnapshot`), { path: '/x', reused: false }),
    stopControlPlane: async () => ({ moved: ['etcd.yaml'], to: '/aside' }),
    restoreEtcdData: (async () => ({ restoredWith: 'etcdutl', previousDataDir: '/var/lib/etcd.before' })) as never,
    startControlPlane: async () => ({ started: ['etcd.yaml'] }),
    verifyApi: async () => ({
      apiServer: 'https://x',
      namespaces: ['default'],
      nodes: [],
      matched: [],
      differed: [],
      staleNodesRemoved: [],
    }),
    claimHolder: (input) => claimHolder({ client } as never)(input),
    // A backup's first step: which version ran it is all this test needs of it.
    planBackup: async () => {
      calls.push(`${version}:planBackup`);
      throw ApplicationFailure.nonRetryable('stub: the backup has shown which version runs it', 'StubStop');
    },
  });

  /** A worker of the engine's deployment on the bundle, its build id derived from it as `lifeboat worker` does. */
  async function startVersion(bundle: { code: string; sourceMap: string }, calls: string[]) {
    const config = parseConfig({ temporal: { deployment: { name: deploymentName } } }, 'test config');
    const d = workerDeployment(config, bundle.code, {})!;
    const worker = await startStubWorker(taskQueue, stubs(d.buildId, calls), {
      workflowBundle: bundle,
      workerDeploymentOptions: deploymentOptions(d),
    });
    stops.push(worker.stop);
    client = worker.client;
    return { deployment: d, stop: worker.stop };
  }

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  });

  it('finishes the recovery on version A, sends new runs to B, drains A', async () => {
    const logger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
    const [bundleA, bundleB] = await Promise.all([
      workflowBundle(),
      bundleWorkflowCode({ workflowsPath: require.resolve('../support/workflows-variant'), payloadConverterPath, logger }),
    ]);
    const calls: string[] = [];
    const a = await startVersion(bundleA, calls);
    // The server knows a version once its worker has polled: until then it cannot be made current.
    await waitFor('version A to be made current', () => setCurrentVersion(client, a.deployment).then(() => true), 30_000, 200);

    const recovery = await client.workflow.start(recoverCluster, {
      taskQueue,
      workflowId: `recover-${cluster}`,
      args: [{ cluster, approval: 'required', approvalTimeoutSeconds: 120 }],
    });
    await waitFor(
      'the recovery to await approval',
      async () => (await recovery.query(progressQuery)).state === 'awaiting-approval',
      30_000,
      100,
    );

    const b = await startVersion(bundleB, calls);
    // As an operator rolls it out: `lifeboat temporal set-current-version <build id>`.
    const setB = await waitFor(
      'version B to be made current by the CLI',
      async () => {
        const r = await runCli(['--config', configFile, 'temporal', 'set-current-version', b.deployment.buildId]);
        return r.code === 0 ? r : undefined;
      },
      60_000,
      500,
    );
    expect(setB.stdout).toContain(`current version of ${deploymentName}: ${b.deployment.buildId}`);
    expect(b.deployment.buildId).not.toBe(a.deployment.buildId);
    expect(b.deployment.buildId.split('-')[0]).toBe(a.deployment.buildId.split('-')[0]); // same release, other code

    // B is current; the recovery waiting for approval is still pinned to A (visibility is eventually consistent).
    await waitFor('the recovery to count as pinned to A', async () => (await openRunsPinnedTo(client, a.deployment)) >= 1, 30_000, 200);
    const onA = (await recovery.describe()).raw.workflowExecutionInfo?.versioningInfo;
    expect([onA?.behavior, onA?.deploymentVersion?.buildId]).toEqual([
      temporal.api.enums.v1.VersioningBehavior.VERSIONING_BEHAVIOR_PINNED,
      a.deployment.buildId,
    ]);
    const notDrained = await runCli(['--config', configFile, 'temporal', 'pinned-runs', a.deployment.buildId]);
    expect([notDrained.code, notDrained.stdout]).toEqual([
      1,
      expect.stringMatching(/open run\(s\) pinned to .*: keep its workers running/),
    ]);
    await recovery.signal(approveSignal, { by: 'oncall', reason: 'upgrade test' });
    const result = await recovery.result();
    expect(result.outcome).toBe('restored');
    const history = await recovery.fetchHistory();
    const byVersion = completedBy(history);
    expect(byVersion.length).toBeGreaterThan(3);
    expect(new Set(byVersion)).toEqual(new Set([a.deployment.buildId]));
    expect(calls).toEqual([`${a.deployment.buildId}:fetchSnapshot`]);
    const versioning = (await recovery.describe()).raw.workflowExecutionInfo?.versioningInfo;
    expect(versioning?.behavior).toBe(temporal.api.enums.v1.VersioningBehavior.VERSIONING_BEHAVIOR_PINNED);

    // A new backup run goes to B, the current version (AUTO_UPGRADE: it would follow a later version too).
    const backup = await client.workflow.start(backupCluster, { taskQueue, workflowId: `backup-${cluster}`, args: [{ cluster }] });
    const backupBy = await waitFor(
      'the backup run to complete a workflow task',
      async () => completedBy(await backup.fetchHistory())[0],
      30_000,
      100,
    );
    expect(backupBy).toBe(b.deployment.buildId);
    expect((await backup.describe()).raw.workflowExecutionInfo?.versioningInfo?.behavior).toBe(
      temporal.api.enums.v1.VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE,
    );
    await waitFor('the backup to plan', async () => calls.includes(`${b.deployment.buildId}:planBackup`), 30_000, 100);
    expect(calls.filter((c) => c.endsWith(':planBackup'))).toEqual([`${b.deployment.buildId}:planBackup`]);
    await backup.terminate('upgrade test: routing proven').catch(() => undefined); // it may have ended already

    // A is drained: no open run pinned to it (visibility), so its worker can go.
    await waitFor('version A to be drained', async () => (await openRunsPinnedTo(client, a.deployment)) === 0, 30_000, 200);
    const drained = await runCli(['--config', configFile, 'temporal', 'pinned-runs', a.deployment.buildId]);
    expect([drained.code, drained.stdout.trim()]).toEqual([0, `${a.deployment.buildId} is drained: its workers can be stopped`]);
    await a.stop();
  }, 300_000);

  it('`lifeboat worker` (built) takes its build id from the bundle it runs and polls as that version', async () => {
    const { launch } = await workerProcess('versioned', undefined, undefined);
    const worker = launch({ LIFEBOAT_DEPLOYMENT_NAME: `${deploymentName}-built` });
    stops.push(() => worker.stop());
    const bundle = await readFile(join(__dirname, '../../dist/workflow-bundle.js'), 'utf8');
    const buildId = `${engineVersion()}-${createHash('sha256').update(bundle).digest('hex').slice(0, 12)}`;
    /** The first line of the worker's JSON log that `match` accepts, once it is there. */
    const logged = (what: string, match: (msg: string) => boolean, timeoutMs: number) =>
      waitFor(
        what,
        async () =>
          (await readFile(worker.logFile, 'utf8'))
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l) as { msg: string; level: number; deployment?: unknown })
            .find((l) => match(l.msg)),
        timeoutMs,
        200,
      );
    const started = await logged('the worker to start', (msg) => msg === 'worker started', 60_000);
    expect(started.deployment).toEqual({ deploymentName: `${deploymentName}-built`, buildId });
    // A new deployment has no current version: this worker would get nothing, and says so with the command that fixes it.
    const wedge = await logged('the worker to say its version gets no runs', (msg) => msg.includes('has no current version'), 30_000);
    expect(wedge.level).toBe(40); // pino's warn
    expect(wedge.msg).toContain(`lifeboat temporal set-current-version ${buildId}`);
    // Only a version that has polled can be made current.
    const env = { LIFEBOAT_DEPLOYMENT_NAME: `${deploymentName}-built` };
    const set = await waitFor(
      'the built version to be made current',
      async () => {
        const r = await runCli(['--config', configFile, 'temporal', 'set-current-version', buildId], { env });
        return r.code === 0 ? r : undefined;
      },
      60_000,
      500,
    );
    expect(set.stdout.trim()).toBe(`current version of ${deploymentName}-built: ${buildId}`);
  }, 120_000);
});
