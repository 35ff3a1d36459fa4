import { ApplicationFailure } from '@temporalio/common';
import { type Client, WorkflowFailedError } from '@temporalio/client';
import type { Activities } from '../../activities';
import type { RecoveryPlan } from '../../src/recovery/plan';
import { approveSignal, importBackup, progressQuery, recoverCluster, rejectSignal } from '../../workflows';
import { claimHolder } from '../../activities/claim-holder';
import type { RecoverClusterInput } from '../../workflows/recovery-input';
import type { StepFailureDetails } from '../../workflows/step-failure';
import { startStubWorker } from '../support/worker';
import { rawPayload, signalRaw } from '../support/raw-payloads';
import { testBed } from '../support/bed';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';

/**
 * The recovery workflow's logic with stub activities on the real dev server, in seconds: the order of its steps, what
 * a failure at each point undoes, approval and its timeout, the dry run, and the `latest` pass-over. The real-server
 * recoveries are in recovery.test.ts and friends.
 */
const plan = (manifestKey: string) =>
  ({
    cluster: 'c',
    mode: 'in-place',
    node: 'cp1',
    host: '10.0.0.1',
    snapshot: {
      manifestKey,
      key: `${manifestKey}.db`,
      created: new Date().toISOString(),
      revision: 5,
      totalKeys: 1,
      plainSize: 1,
      encryptionKeyId: null,
    },
    skipped: [],
    steps: [],
    paths: { dataDir: '/var/lib/etcd', restoreDir: '/var/lib/etcd.restored-r', asideManifestsDir: '/work/r/manifests-before' },
    tool: { command: 'etcdutl', kind: 'etcdutl', version: '3.6.0', bumpRevision: true },
  }) as unknown as RecoveryPlan;

type Step = 'fetchSnapshot' | 'stopControlPlane' | 'restoreEtcdData' | 'startControlPlane' | 'verifyApi';

interface Script {
  /** The step that fails (non-retryable, typed like the real activity's failure), and how often. */
  failAt?: Step;
  failType?: string;
  failTimes?: number;
}

describe('recoverCluster logic (stub activities, real dev server)', () => {
  let client: Client;
  const taskQueue = `recovery-logic-${process.pid}`;
  const calls: string[] = [];
  let script: Script = {};
  let failures = 0;
  /** The cluster's recovery.approval and approvalTimeout as resolveCluster returns them from the config. */
  let clusterPolicy: { approval: 'required' | 'auto'; approvalTimeoutSeconds: number } | undefined;

  const step =
    <T>(name: Step, result: T) =>
    async (input: { plan?: RecoveryPlan }): Promise<T> => {
      calls.push(input.plan ? `${name}:${input.plan.snapshot.manifestKey}` : name);
      if (script.failAt === name && failures < (script.failTimes ?? Infinity)) {
        failures++;
        throw ApplicationFailure.nonRetryable(`${name} failed on purpose`, script.failType ?? 'RestoreFailed');
      }
      return result;
    };

  const stubs: Partial<Activities> = {
    resolveCluster: async ({ cluster }) => ({ name: cluster, nodes: ['cp1'], ...(clusterPolicy ? { recovery: clusterPolicy } : {}) }),
    planRecovery: async (input) => {
      calls.push(`planRecovery${input.passOver?.length ? `:passOver=${input.passOver.map((p) => p.manifestKey).join(',')}` : ''}`);
      if (input.snapshot?.endsWith('.manifest.json')) calls.push(`snapshot=${input.snapshot}`);
      return plan(input.passOver?.length ? 'older' : 'newest');
    },
    planPointInTime: async ({ at }) => {
      calls.push(`planPointInTime:${at}`);
      return {
        cluster: 'c',
        asked: at,
        chain: '20261203T070000Z-rev9',
        base: { manifestKey: 'p/c/etcd/20261203T070000Z-rev9.manifest.json', revision: '9', created: '2026-12-03T07:00:00.000Z' },
        revision: '42',
        time: '2026-12-03T07:05:00.000Z',
        segments: 3,
        newest: { revision: '50', time: '2026-12-03T07:06:00.000Z' },
        notRestored: 'changes after 2026-12-03T07:05:00.000Z (revisions after 42)',
      };
    },
    buildPoint: async ({ plan: p }) => {
      calls.push(`buildPoint:${p.revision}`);
      return { manifestKey: 'p/c/etcd/20261203T070500Z-rev42.manifest.json', revision: p.revision, time: p.time, built: true };
    },
    pauseBackups: async () => {
      calls.push('pauseBackups');
      return { paused: true, existed: true, scheduleId: 'backup-c' };
    },
    resumeBackups: async () => {
      calls.push('resumeBackups');
    },
    fetchSnapshot: step('fetchSnapshot', { path: '/x', reused: false }),
    stopControlPlane: step('stopControlPlane', { moved: ['etcd.yaml'], to: '/aside' }),
    restoreEtcdData: step('restoreEtcdData', { restoredWith: 'etcdutl', previousDataDir: '/var/lib/etcd.before' }) as never,
    startControlPlane: step('startControlPlane', { started: ['etcd.yaml'] }),
    verifyApi: step('verifyApi', {
      apiServer: 'https://x',
      namespaces: ['default'],
      nodes: [],
      matched: [],
      differed: [],
      staleNodesRemoved: [],
    }),
    // The real one: who holds a claim, asked of the dev server.
    claimHolder: (input) => claimHolder({ client } as never)(input),
    rollbackRecovery: async () => {
      calls.push('rollbackRecovery');
      return { actions: ['/var/lib/etcd.before -> /var/lib/etcd'] };
    },
  };

  let stub: Awaited<ReturnType<typeof startStubWorker>>;
  beforeAll(async () => {
    stub = await startStubWorker(taskQueue, stubs);
    client = stub.client;
  });
  afterAll(() => stub?.stop());
  afterEach(async () => {
    // A case that failed half way must not leave its recovery running into the next one.
    const d = await client.workflow
      .getHandle('recover-c')
      .describe()
      .catch(() => undefined);
    if (d?.status.name === 'RUNNING') await client.workflow.getHandle('recover-c').terminate('case ended');
  });
  beforeEach(() => {
    calls.length = 0;
    failures = 0;
    script = {};
    clusterPolicy = undefined;
  });

  const start = (input: Omit<RecoverClusterInput, 'cluster'>, s: Script = {}) => {
    script = s;
    return client.workflow.start(recoverCluster, {
      taskQueue,
      // One at a time, as every recovery of a cluster runs (workflows/run-ids.ts).
      workflowId: 'recover-c',
      args: [{ cluster: 'c', ...input }],
    });
  };
  const waitForState = async (handle: Awaited<ReturnType<typeof start>>, state: string) => {
    for (let i = 0; i < 100 && (await handle.query(progressQuery)).state !== state; i++) await new Promise((res) => setTimeout(res, 100));
    expect((await handle.query(progressQuery)).state).toBe(state);
  };
  const failureOf = async (p: Promise<unknown>) => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    return (err as WorkflowFailedError).cause as ApplicationFailure;
  };

  it('a dry run plans and touches nothing else', async () => {
    const r = await (await start({ dryRun: true, approval: 'auto' })).result();
    expect(r.outcome).toBe('planned');
    expect(calls).toEqual(['planRecovery']);
    expect(r.steps.filter((s) => s.step !== 'plan').every((s) => s.status === 'skipped')).toBe(true);
  });

  it('to a point: proves it, rebuilds it off the control plane, then restores that backup; a dry run builds nothing', async () => {
    const r = await (await start({ at: '2026-12-03T07:05:00Z', approval: 'auto' })).result();
    expect(r.outcome).toBe('restored');
    expect(calls.slice(0, 4)).toEqual([
      'planPointInTime:2026-12-03T07:05:00Z',
      'buildPoint:42',
      'planRecovery',
      'snapshot=p/c/etcd/20261203T070500Z-rev42.manifest.json',
    ]);
    expect(r.point).toMatchObject({ revision: '42', segments: 3, built: { built: true } });
    expect(r.steps.find((s) => s.step === 'plan')?.detail).toContain('point 2026-12-03T07:05:00.000Z (revision 42');
    calls.length = 0;
    const dry = await (await start({ at: 'newest', dryRun: true })).result();
    expect(dry.outcome).toBe('planned');
    expect(calls).toEqual(['planPointInTime:newest', 'planRecovery', 'snapshot=p/c/etcd/20261203T070000Z-rev9.manifest.json']);
    expect(dry.point?.notRestored).toContain('revisions after 42');
  });

  it('runs the steps in order, resuming backups last', async () => {
    const r = await (await start({ approval: 'auto' })).result();
    expect(r.outcome).toBe('restored');
    expect(calls).toEqual([
      'planRecovery',
      'pauseBackups',
      'fetchSnapshot:newest',
      'stopControlPlane:newest',
      'restoreEtcdData:newest',
      'startControlPlane:newest',
      'verifyApi:newest',
      'resumeBackups',
    ]);
  });

  it('waits for approval, and an approval by signal lets it run, recorded with who and why', async () => {
    const handle = await start({ approval: 'required', approvalTimeoutSeconds: 60 });
    for (let i = 0; i < 50 && (await handle.query(progressQuery)).state !== 'awaiting-approval'; i++)
      await new Promise((res) => setTimeout(res, 100));
    expect(calls).toEqual(['planRecovery']);
    await handle.signal(approveSignal, { by: 'oncall', reason: 'etcd corrupt' });
    const r = await handle.result();
    expect(r.outcome).toBe('restored');
    expect(r.approval).toEqual({ by: 'oncall', reason: 'etcd corrupt', decision: 'approved', at: expect.any(String) });
    expect(Date.parse(r.approval!.at!)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('a malformed approve or reject signal is no decision: ignored, counted, and the audit trail stays who, why and when', async () => {
    const handle = await start({ approval: 'required', approvalTimeoutSeconds: 60 });
    for (let i = 0; i < 50 && (await handle.query(progressQuery)).state !== 'awaiting-approval'; i++)
      await new Promise((res) => setTimeout(res, 100));
    // What the UI's signal form, `temporal workflow signal` or a script can send: the server takes every one of them.
    await handle.signal(approveSignal, null as never);
    await handle.signal(approveSignal, { by: 42 } as never);
    await handle.signal(rejectSignal, { by: '' });
    await handle.signal(approveSignal, { by: 'mallory', reason: 'r'.repeat(100_000) });
    await handle.signal(approveSignal, { by: 'mallory', extra: 'x'.repeat(1_000_000) } as never);
    await signalRaw(client, handle.workflowId, 'approve', [rawPayload('{"by": "mallory"')]);
    let p = await handle.query(progressQuery);
    for (let i = 0; i < 50 && (p.ignoredSignals?.count ?? 0) < 6; i++) {
      await new Promise((res) => setTimeout(res, 100));
      p = await handle.query(progressQuery);
    }
    expect(p.state).toBe('awaiting-approval');
    expect(p.approval).toBeUndefined();
    expect(p.ignoredSignals).toEqual({ count: 6, first: expect.stringMatching(/^signal approve: expected an object like/) });
    expect(calls).toEqual(['planRecovery']);
    await handle.signal(approveSignal, { by: '  oncall ', reason: 'etcd corrupt' });
    const r = await handle.result();
    expect(r.outcome).toBe('restored');
    expect(r.approval).toEqual({ by: 'oncall', reason: 'etcd corrupt', decision: 'approved', at: expect.any(String) });
    expect(r.ignoredSignals?.count).toBe(6);
    expect(JSON.stringify(r).length).toBeLessThan(20_000);
  });

  it('an approval timeout names the malformed signals it ignored', async () => {
    const handle = await start({ approval: 'required', approvalTimeoutSeconds: 3 });
    await handle.signal(approveSignal, { by: 'alice', comment: 'go' } as never);
    const cause = await failureOf(handle.result());
    expect(cause.type).toBe('ApprovalTimeout');
    expect(cause.message).toMatch(
      /not approved within 3 s; nothing was changed \(1 malformed approval signal\(s\) ignored, the first: signal approve: unknown field "comment"/,
    );
    expect(calls).toEqual(['planRecovery']);
  });

  it("`lifeboat restore` without --approve leaves approval to the cluster's recovery.approval (auto here: no wait)", async () => {
    clusterPolicy = { approval: 'auto', approvalTimeoutSeconds: 5 };
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-cli-'));
    const configFile = join(dir, 'config.yaml');
    const node = {
      name: 'cp1',
      host: '192.0.2.10',
      hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMbq1c5ZQk6pVZr0yQdX3f0b2m5M6mKk0B8w3o3W2w2a',
    };
    await writeFile(
      configFile,
      stringify({
        temporal: { address: testBed().temporalAddress, taskQueue },
        clusters: [
          { name: 'c', nodes: [node], storage: { bucket: 'etcd-backups' }, recovery: { approval: 'auto', approvalTimeout: '5s' } },
        ],
      }),
    );
    const { stdout } = await promisify(execFile)('node', [
      join(__dirname, '../../dist/src/cli/main.js'),
      '--config',
      configFile,
      'restore',
      'c',
      '--no-wait',
    ]);
    const runId = /\(run (\S+)\)/.exec(stdout)?.[1];
    expect(runId).toBeDefined();
    const handle = client.workflow.getHandle<typeof recoverCluster>('recover-c', runId);
    const r = await handle.result();
    expect(r.outcome).toBe('restored');
    expect(r.approval).toEqual({ by: 'policy', decision: 'auto' });
    expect(calls).toContain('stopControlPlane:newest');
  });

  it('a second recovery of the cluster under another id (typed into the UI) is refused before any step; the first goes on', async () => {
    const first = await start({ approval: 'required', approvalTimeoutSeconds: 60 });
    await waitForState(first, 'awaiting-approval');
    const second = await failureOf(
      client.workflow.execute(recoverCluster, { taskQueue, workflowId: 'recover-c-again', args: [{ cluster: 'c', approval: 'auto' }] }),
    );
    expect(second.type).toBe('WrongWorkflowId');
    expect(second.message).toMatch(/runs as workflow id recover-c, one at a time.*start it again as recover-c/);
    expect(calls).toEqual(['planRecovery']);
    await first.signal(approveSignal, { by: 'oncall' });
    expect((await first.result()).outcome).toBe('restored');
  });

  it('an import of the cluster while its recovery runs is refused naming the recovery; the claim is free as soon as the recovery ends', async () => {
    const first = await start({ approval: 'required', approvalTimeoutSeconds: 60 });
    await waitForState(first, 'awaiting-approval');
    const imported = await failureOf(
      client.workflow.execute(importBackup, {
        taskQueue,
        workflowId: `import-c-${Date.now()}`,
        args: [{ cluster: 'c', key: 'runbook/snap.db' }],
      }),
    );
    expect(imported.type).toBe('AlreadyRunning');
    expect(imported.message).toMatch(/^cluster c is already being changed by workflow recover-c; one at a time/);
    await first.signal(rejectSignal, { by: 'oncall' });
    expect((await first.result()).outcome).toBe('rejected');
    // Straight after: the next recovery takes the claim (released by the first, not left to the server).
    expect((await (await start({ dryRun: true })).result()).outcome).toBe('planned');
  });

  it('a rejection changes nothing: no pause, no step', async () => {
    const handle = await start({ approval: 'required', approvalTimeoutSeconds: 60 });
    await handle.signal(rejectSignal, { by: 'oncall', reason: 'false alarm' });
    const r = await handle.result();
    expect(r.outcome).toBe('rejected');
    expect(calls).toEqual(['planRecovery']);
  });

  it('an approval timeout fails the run, naming the wait, and changes nothing', async () => {
    const cause = await failureOf((await start({ approval: 'required', approvalTimeoutSeconds: 1 })).result());
    expect(cause.type).toBe('ApprovalTimeout');
    expect(cause.message).toMatch(/not approved within 1 s; nothing was changed/);
    expect(calls).toEqual(['planRecovery']);
  });

  it.each<[Step, string[]]>([
    ['fetchSnapshot', ['fetchSnapshot:newest', 'resumeBackups']],
    ['restoreEtcdData', ['fetchSnapshot:newest', 'stopControlPlane:newest', 'restoreEtcdData:newest', 'rollbackRecovery', 'resumeBackups']],
    [
      'verifyApi',
      [
        'fetchSnapshot:newest',
        'stopControlPlane:newest',
        'restoreEtcdData:newest',
        'startControlPlane:newest',
        'verifyApi:newest',
        'rollbackRecovery',
        'resumeBackups',
      ],
    ],
  ])(
    'a failure in %s rolls back only once the control plane was stopped, then resumes backups; the failure names the cluster and step',
    async (at, after) => {
      const type = at === 'verifyApi' ? 'VerificationFailed' : 'RestoreFailed';
      const cause = await failureOf((await start({ approval: 'auto' }, { failAt: at, failType: type })).result());
      expect(calls).toEqual(['planRecovery', 'pauseBackups', ...after]);
      expect(cause.type).toBe(type);
      const stepName = ({ fetchSnapshot: 'fetch', restoreEtcdData: 'restore', verifyApi: 'verify' } as Record<string, string>)[at];
      expect(cause.message).toBe(`cluster "c", step ${stepName}: ${at} failed on purpose`);
      expect(cause.details).toEqual([{ cluster: 'c', step: stepName } satisfies StepFailureDetails]);
    },
  );

  it('keepRestoredOnFailure keeps the restored state instead of rolling back, and says where everything is', async () => {
    const cause = await failureOf(
      (await start({ approval: 'auto', keepRestoredOnFailure: true }, { failAt: 'verifyApi', failType: 'VerificationFailed' })).result(),
    );
    expect(calls).not.toContain('rollbackRecovery');
    expect(calls[calls.length - 1]).toBe('resumeBackups');
    expect(cause.type).toBe('VerificationFailed');
    expect(cause.message).toBe(
      'cluster "c", step verify: verifyApi failed on purpose; kept as restored (keepRestoredOnFailure): the restored data dir is /var/lib/etcd, the previous one /var/lib/etcd.before, the original manifests in /work/r/manifests-before',
    );
    // Failed before the swap: nothing restored is in use, and the message does not pretend otherwise.
    calls.length = 0;
    const early = await failureOf((await start({ approval: 'auto', keepRestoredOnFailure: true }, { failAt: 'restoreEtcdData' })).result());
    expect(calls).not.toContain('rollbackRecovery');
    expect(early.message).toMatch(
      /step restore: restoreEtcdData failed on purpose; not rolled back \(keepRestoredOnFailure\): the data dir \/var\/lib\/etcd is as the failed step left it .*the original manifests in \/work\/r\/manifests-before$/,
    );
  });

  it('"latest" passes over a backup that fails verification while fetched, before the node is touched', async () => {
    const r = await (await start({ approval: 'auto' }, { failAt: 'fetchSnapshot', failType: 'CorruptSnapshot', failTimes: 1 })).result();
    expect(r.outcome).toBe('restored');
    expect(calls.slice(0, 5)).toEqual([
      'planRecovery',
      'pauseBackups',
      'fetchSnapshot:newest',
      'planRecovery:passOver=newest',
      'fetchSnapshot:older',
    ]);
    expect(r.plan.snapshot.manifestKey).toBe('older');
    expect(r.steps.find((s) => s.step === 'fetch')?.detail).toMatch(/passed over newest/);
  });

  it('a backup named by key is never substituted: a corrupt fetch fails the run', async () => {
    const cause = await failureOf(
      (
        await start({ approval: 'auto', snapshot: 'lifeboat/c/etcd/x.db' }, { failAt: 'fetchSnapshot', failType: 'CorruptSnapshot' })
      ).result(),
    );
    expect(cause.type).toBe('CorruptSnapshot');
    expect(calls.filter((c) => c.startsWith('planRecovery'))).toEqual(['planRecovery']);
  });
});
