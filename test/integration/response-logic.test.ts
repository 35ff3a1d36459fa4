import { ApplicationFailure } from '@temporalio/common';
import { type Client, WorkflowIdConflictPolicy } from '@temporalio/client';
import type { Activities } from '../../activities';
import type { HealthReport } from '../../activities/health/check-health';
import type { Diagnosis } from '../../activities/response/diagnose';
import type { ResponsePolicy } from '../../activities/response/policy';
import type { RecoveryPlan } from '../../src/recovery/plan';
import { approveSignal, recoverCluster, rejectSignal } from '../../workflows/recover-cluster';
import { alertSignal, respondToAlert, type RespondToAlertResult } from '../../workflows/respond-to-alert';
import { backupCluster } from '../../workflows/backup-cluster';
import { checkClusterHealth } from '../../workflows/check-cluster-health';
import { refuseWithinCooldown } from '../../activities/recovery/recent-recovery';
import type { AlertNotice } from '../../workflows/response-input';
import { startStubWorker } from '../support/worker';
import { rawPayload, signalRaw } from '../support/raw-payloads';
import { progressQuery, responseQuery } from '../../workflows';
import { waitFor } from '../../src/devserver/processes';

/**
 * The response workflow's decisions, with stub activities on the real dev server: what it does for each probe
 * sequence, diagnosis and policy, in seconds. The real-server path (sandbox, Prometheus, Alertmanager) is in
 * alert-recovery.test.ts.
 */
const COMPONENTS = ['kube-apiserver', 'etcd', 'kube-scheduler', 'kube-controller-manager', 'node'] as const;
function health(down: string[]): HealthReport {
  return {
    cluster: 'c',
    node: 'cp1',
    checkedAt: new Date().toISOString(),
    components: COMPONENTS.map((component) => ({
      component,
      up: !down.includes(component),
      detail: down.includes(component) ? 'connection refused' : 'ok',
    })),
    certificates: [],
    problems: down.map((d) => `${d} down`),
  };
}

const plan = {
  cluster: 'c',
  mode: 'in-place',
  node: 'cp1',
  host: '10.0.0.1',
  snapshot: {
    manifestKey: 'm',
    key: 'k.db',
    created: new Date().toISOString(),
    revision: '5',
    totalKeys: 1,
    plainSize: 1,
    encryptionKeyId: null,
  },
  skipped: [],
  steps: [],
} as unknown as RecoveryPlan;

interface Script {
  policy: Partial<ResponsePolicy>;
  probes: string[][];
  diagnosis?: Partial<Diagnosis>;
  /** Changes each probe's report (etcd revision, newest backup, ...). */
  report?: (h: HealthReport) => HealthReport;
  /** The cluster's recovery policy from its config, as resolveCluster returns it. */
  clusterPolicy?: { approval: 'required' | 'auto'; approvalTimeoutSeconds: number };
  /** Continuous backups: whether the bucket proves a newest point (else the refusal). */
  point?: 'proven' | 'broken';
}

const alert: AlertNotice = {
  name: 'LifeboatControlPlaneComponentDown',
  status: 'firing',
  fingerprint: 'f00d',
  labels: { component: 'etcd' },
};

describe('respondToAlert decisions (stub activities, real dev server)', () => {
  let client: Client;
  const calls: string[] = [];
  let script: Script;

  const stubs: Partial<Activities> = {
    responsePolicy: async ({ cluster }) => ({
      cluster,
      onAlert: 'auto',
      confirmWindowSeconds: 2,
      confirmProbes: 3,
      approvalTimeoutSeconds: 5,
      ...script.policy,
    }),
    checkHealth: async () => {
      calls.push('checkHealth');
      return (script.report ?? ((h) => h))(health(script.probes.shift() ?? ['etcd']));
    },
    diagnoseCluster: async ({ cluster }) => {
      calls.push('diagnoseCluster');
      return {
        cluster,
        node: 'cp1',
        cause: 'etcd-data-corrupt',
        verdict: 'restore-in-place',
        summary: 'etcd db corrupt',
        advice: 'restore',
        findings: [],
        ...script.diagnosis,
      };
    },
    notify: async ({ event }) => {
      calls.push(`notify:${event}`);
      return { sent: false };
    },
    resolveCluster: async ({ cluster }) => ({
      name: cluster,
      nodes: ['cp1'],
      ...(script?.clusterPolicy ? { recovery: script.clusterPolicy } : {}),
    }),
    planRecovery: async () => {
      calls.push('planRecovery');
      return plan;
    },
    planPointInTime: async ({ at }) => {
      calls.push(`planPointInTime:${at}`);
      if (script.point === 'broken') throw ApplicationFailure.nonRetryable('chain x breaks at k: moved', 'PointUnavailable');
      return {
        cluster: 'c',
        asked: at,
        chain: 'x',
        base: { manifestKey: 'm', revision: '5', created: '2026-12-03T07:00:00.000Z' },
        revision: '8',
        time: '2026-12-03T07:05:00.000Z',
        segments: 1,
        newest: { revision: '8', time: '2026-12-03T07:05:00.000Z' },
        notRestored: 'changes after 2026-12-03T07:05:00.000Z (revisions after 8)',
      };
    },
    buildPoint: async ({ plan: p }) => {
      calls.push('buildPoint');
      return { manifestKey: 'm8', revision: p.revision, time: p.time, built: true };
    },
    pauseBackups: async () => ({ paused: false, existed: false, scheduleId: 'backup-c' }),
    resumeBackups: async () => undefined,
    fetchSnapshot: async () => ({ path: '/x', reused: false }),
    stopControlPlane: async () => {
      calls.push('stopControlPlane');
      return { moved: ['etcd.yaml'], to: '/aside' };
    },
    restoreEtcdData: async () => {
      calls.push('restoreEtcdData');
      return { restoredWith: 'etcdutl', previousDataDir: '/var/lib/etcd.before' } as never;
    },
    startControlPlane: async () => ({ started: ['etcd.yaml'] }),
    verifyApi: async () => ({ namespaces: ['default'], matched: [], differed: [] }) as never,
    rollbackRecovery: async () => ({ actions: [] }),
  };

  const taskQueue = `response-logic-${process.pid}`;

  let stub: Awaited<ReturnType<typeof startStubWorker>>;
  beforeAll(async () => {
    stub = await startStubWorker(taskQueue, stubs);
    client = stub.client;
  });
  afterAll(() => stub?.stop());
  beforeEach(() => {
    calls.length = 0;
  });

  let n = 0;
  const respond = async (s: Script, during?: (id: string) => Promise<void>): Promise<RespondToAlertResult> => {
    script = s;
    const cluster = `c${++n}`;
    const handle = await client.workflow.start(respondToAlert, {
      taskQueue,
      workflowId: `respond-${cluster}`,
      args: [{ cluster, alert }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    });
    if (during) await during(cluster);
    return handle.result();
  };

  it('stands down when a later probe finds every component up, before any diagnosis or change', async () => {
    const r = await respond({ policy: {}, probes: [['etcd'], []] });
    expect(r.outcome).toBe('stood-down');
    expect(r.evidence.map((e) => e.down)).toEqual([['etcd'], []]);
    expect(calls).toEqual(['checkHealth', 'checkHealth', 'notify:stood-down']);
  });

  it('stands down when the alert resolves during the confirm window', async () => {
    const r = await respond({ policy: { confirmWindowSeconds: 30, confirmProbes: 2 }, probes: [['etcd'], ['etcd']] }, async (cluster) => {
      await new Promise((res) => setTimeout(res, 1500));
      await client.workflow.getHandle(`respond-${cluster}`).signal(alertSignal, { ...alert, status: 'resolved' });
    });
    expect(r.outcome).toBe('stood-down');
    expect(r.summary).toMatch(/resolved/);
    expect(calls).not.toContain('diagnoseCluster');
  });

  it('ignores a malformed signal instead of failing its workflow task', async () => {
    const r = await respond({ policy: { confirmWindowSeconds: 3, confirmProbes: 2 }, probes: [['etcd'], []] }, async (cluster) => {
      await client.workflow
        .getHandle(`respond-${cluster}`)
        .signal(alertSignal, { name: '$(reboot)', status: 'resolved', fingerprint: '../../x' });
    });
    expect(r.outcome).toBe('stood-down');
    expect(r.summary).toMatch(/healthy on probe 2/);
  });

  it('a resolved signal with unknown fields, or not JSON at all, is not believed: counted, and the response goes on', async () => {
    const r = await respond(
      { policy: { onAlert: 'notify', confirmWindowSeconds: 3, confirmProbes: 3 }, probes: [['etcd'], ['etcd'], ['etcd']] },
      async (cluster) => {
        const id = `respond-${cluster}`;
        await client.workflow.getHandle(id).signal(alertSignal, { ...alert, status: 'resolved', silence: 'x'.repeat(1_000_000) } as never);
        await signalRaw(client, id, 'alert', [rawPayload('{"status": "resolved"')]);
      },
    );
    expect(r.outcome).toBe('notified');
    expect(r.ignoredSignals).toEqual({ count: 2, first: expect.stringMatching(/^signal\.silence: too large/) });
    expect(JSON.stringify(r).length).toBeLessThan(20_000);
  });

  it("keeps going while etcd answers without its data (revision below the newest backup's), unless a recovery explains it", async () => {
    const lost = (h: HealthReport): HealthReport => ({
      ...h,
      etcd: { revision: '12' },
      newestBackup: { key: 'k', created: new Date(Date.now() - 60_000).toISOString(), ageSeconds: 60, sizeBytes: 1, revision: '5000' },
    });
    const r = await respond({
      policy: { onAlert: 'notify' },
      probes: [[], [], []],
      report: lost,
      diagnosis: { cause: 'etcd-data-lost', verdict: 'restore-in-place', summary: 'etcd lost its data' },
    });
    expect(r.outcome).toBe('notified');
    expect(r.evidence.map((e) => e.down)).toEqual([['etcd-data'], ['etcd-data'], ['etcd-data']]);
    const explained = await respond({
      policy: {},
      probes: [[], [], []],
      report: (h) => ({ ...lost(h), recovery: { inProgress: false, lastSuccessAt: new Date().toISOString() } }),
    });
    expect(explained.outcome).toBe('stood-down');
    // A wipe after a restore: below what the restore left (its snapshot's revision plus the bump) is lost again.
    const again = await respond({
      policy: { onAlert: 'notify' },
      probes: [[], [], []],
      report: (h) => ({
        ...lost(h),
        recovery: { inProgress: false, lastSuccessAt: new Date().toISOString(), restoredRevision: '1000005000' },
      }),
    });
    expect(again.outcome).toBe('notified');
  });

  it('a probe that could not check etcd data (bucket or Temporal did not answer) is no evidence: it neither stands down nor is diagnosed', async () => {
    const backup = { key: 'k', created: new Date(Date.now() - 60_000).toISOString(), ageSeconds: 60, sizeBytes: 1, revision: '5000' };
    const unreadBucket = (h: HealthReport): HealthReport => ({
      ...h,
      etcd: { revision: '12' },
      unread: { newestBackup: 'cannot read s3://b: no answer within 10 s' },
    });
    const lost = (h: HealthReport): HealthReport => ({ ...h, etcd: { revision: '12' }, newestBackup: backup });
    // The first probe cannot read the bucket, the next two can: the response goes on and diagnoses the loss.
    let probe = 0;
    const r = await respond({
      policy: { onAlert: 'notify' },
      probes: [[], [], []],
      report: (h) => (probe++ === 0 ? unreadBucket(h) : lost(h)),
      diagnosis: { cause: 'etcd-data-lost', verdict: 'restore-in-place', summary: 'etcd lost its data' },
    });
    expect(r.outcome).toBe('notified');
    expect(r.evidence.map((e) => e.down)).toEqual([[], ['etcd-data'], ['etcd-data']]);
    expect(r.evidence[0].detail).toEqual([expect.stringMatching(/^etcd data not checked: the newest backup could not be read/)]);
    // A revision below the backup's with the recovery state unread: a restore since might explain it, so no verdict.
    // On every probe: nothing is diagnosed and nothing changes.
    calls.length = 0;
    const unsure = await respond({
      policy: {},
      probes: [[], [], []],
      report: (h) => ({ ...lost(h), unread: { recovery: 'cannot describe recover-c in Temporal: no answer within 3 s' } }),
    });
    expect(unsure.outcome).toBe('no-restore');
    expect(unsure.summary).toMatch(/on none of 3 probe\(s\) could etcd's data be checked: the recovery state could not be read/);
    expect(calls.filter((c) => c !== 'checkHealth')).toEqual(['notify:no-restore']);
    // etcd up with its revision unread is no evidence either; a conclusive healthy probe after it stands down.
    probe = 0;
    const healthy = await respond({
      policy: {},
      probes: [[], [], []],
      report: (h) => (probe++ === 0 ? { ...h, newestBackup: backup } : { ...h, etcd: { revision: '6000' }, newestBackup: backup }),
    });
    expect(healthy.outcome).toBe('stood-down');
    expect(healthy.summary).toMatch(/healthy on probe 2 of 3/);
    expect(healthy.evidence[0].detail).toEqual(["etcd data not checked: etcd's revision could not be read"]);
  });

  it('once a probe found etcd without its data, the alert resolving (the component came back) does not stand the response down', async () => {
    const lost = (h: HealthReport): HealthReport => ({
      ...h,
      etcd: { revision: '59' },
      newestBackup: {
        key: 'k',
        created: new Date(Date.now() - 60_000).toISOString(),
        ageSeconds: 60,
        sizeBytes: 1,
        revision: '1000003342',
      },
    });
    // The first probe finds etcd-data; then the component-down alert that started the response resolves.
    const r = await respond(
      {
        policy: { onAlert: 'notify' },
        probes: [[], [], []],
        report: lost,
        diagnosis: { cause: 'etcd-data-lost', verdict: 'restore-in-place', summary: 'etcd lost its data' },
      },
      async (cluster) => {
        const handle = client.workflow.getHandle(`respond-${cluster}`);
        await waitFor('the first probe', async () => (await handle.query(responseQuery)).evidence.length > 0, 10_000, 100);
        await handle.signal(alertSignal, { ...alert, status: 'resolved' });
      },
    );
    expect(r.outcome).toBe('notified');
    expect(r.evidence.map((e) => e.down)).toEqual([['etcd-data'], ['etcd-data'], ['etcd-data']]);
    expect(calls).toContain('diagnoseCluster');
    // A component that was down and came back, with the data intact, still stands down when its alert resolves.
    const back = await respond(
      { policy: { confirmWindowSeconds: 30, confirmProbes: 2 }, probes: [['etcd'], ['etcd']] },
      async (cluster) => {
        const handle = client.workflow.getHandle(`respond-${cluster}`);
        await waitFor('the first probe', async () => (await handle.query(responseQuery)).evidence.length > 0, 10_000, 100);
        await handle.signal(alertSignal, { ...alert, status: 'resolved' });
      },
    );
    expect(back.outcome).toBe('stood-down');
    expect(back.summary).toMatch(/resolved/);
  });

  it('does not restore when the diagnosis says the data is intact', async () => {
    const r = await respond({
      policy: {},
      probes: [['kube-scheduler'], ['kube-scheduler'], ['kube-scheduler']],
      diagnosis: { cause: 'components-down', verdict: 'no-restore', summary: 'only kube-scheduler down', advice: 'restart it' },
    });
    expect(r.outcome).toBe('no-restore');
    expect(r.summary).toMatch(/Not a restore case: restart it/);
    expect(calls).not.toContain('planRecovery');
  });

  it('policy notify recommends without starting anything; policy plan only plans', async () => {
    const notified = await respond({ policy: { onAlert: 'notify' }, probes: [['etcd'], ['etcd'], ['etcd']] });
    expect(notified.outcome).toBe('notified');
    expect(calls).not.toContain('planRecovery');
    calls.length = 0;
    const planned = await respond({ policy: { onAlert: 'plan' }, probes: [['etcd'], ['etcd'], ['etcd']] });
    expect(planned.outcome).toBe('planned');
    expect(calls).toContain('planRecovery');
    expect(calls).not.toContain('stopControlPlane');
  });

  it('policy auto restores through the child recover-<cluster>', async () => {
    const r = await respond({ policy: { onAlert: 'auto' }, probes: [['etcd'], ['etcd'], ['etcd']] });
    expect(r.outcome).toBe('recovered');
    expect(r.recovery).toMatchObject({ workflowId: expect.stringMatching(/^recover-c\d+$/), outcome: 'restored' });
    expect(calls.filter((c) => c === 'restoreEtcdData')).toHaveLength(1);
    expect(calls).toContain('notify:recovery-started');
    // The UI names the child recovery, what started it and why, as it does for a start from the CLI.
    const child = await client.workflow.getHandle(r.recovery!.workflowId).describe();
    await expect(child.staticSummary()).resolves.toMatch(/^recovery of c\d+ \(alert \w+\)$/);
    await expect(child.staticDetails()).resolves.toMatch(/\*\*started by\*\* the alert response respond-c\d+ \(policy auto\)/);
  });

  it('with continuous backups an alert recovers to the newest durable point; a chain it cannot prove falls back to the newest full backup', async () => {
    const pointed = await respond({
      policy: { onAlert: 'auto', continuous: true },
      point: 'proven',
      probes: [['etcd'], ['etcd'], ['etcd']],
    });
    expect(pointed.outcome).toBe('recovered');
    expect(calls.filter((c) => /planPointInTime|buildPoint|restoreEtcdData/.test(c))).toEqual([
      'planPointInTime:newest', // the response proves the point before it starts anything
      'planPointInTime:newest', // the recovery plans it again, then rebuilds it
      'buildPoint',
      'restoreEtcdData',
    ]);
    calls.length = 0;
    const fellBack = await respond({
      policy: { onAlert: 'auto', continuous: true },
      point: 'broken',
      probes: [['etcd'], ['etcd'], ['etcd']],
    });
    expect(fellBack.outcome).toBe('recovered');
    expect(calls.filter((c) => /planPointInTime|buildPoint|restoreEtcdData/.test(c))).toEqual([
      'planPointInTime:newest',
      'restoreEtcdData',
    ]);
    const child = await client.workflow.getHandle(fellBack.recovery!.workflowId).describe();
    expect(child.status.name).toBe('COMPLETED');
  });

  it('policy approve waits: approved -> restored; rejected or timed out -> nothing changed', async () => {
    const waitThen = (signal: typeof approveSignal) => async (cluster: string) => {
      const recovery = client.workflow.getHandle(`recover-${cluster}`);
      for (let i = 0; i < 100; i++) {
        const p = await recovery.query(progressQuery).catch(() => undefined);
        if (p?.state === 'awaiting-approval') break;
        await new Promise((res) => setTimeout(res, 200));
      }
      expect(calls).not.toContain('stopControlPlane');
      await recovery.signal(signal, { by: 'alice', reason: 'test' });
    };
    const approved = await respond({ policy: { onAlert: 'approve' }, probes: [['etcd'], ['etcd'], ['etcd']] }, waitThen(approveSignal));
    expect(approved.outcome).toBe('recovered');
    expect(calls).toContain('notify:needs-approval');
    calls.length = 0;
    const rejected = await respond({ policy: { onAlert: 'approve' }, probes: [['etcd'], ['etcd'], ['etcd']] }, waitThen(rejectSignal));
    expect(rejected.outcome).toBe('rejected');
    expect(calls).not.toContain('stopControlPlane');
    calls.length = 0;
    const timedOut = await respond({ policy: { onAlert: 'approve', approvalTimeoutSeconds: 2 }, probes: [['etcd'], ['etcd'], ['etcd']] });
    expect(timedOut.outcome).toBe('rejected');
    expect(timedOut.summary).toMatch(/No approval within 2 s/);
    expect(calls).not.toContain('stopControlPlane');
  });

  it("applies the cluster's recovery.approval and approvalTimeout to a recovery started without them (UI, scripts)", async () => {
    const start = (cluster: string, extra: Record<string, unknown> = {}) =>
      client.workflow.start(recoverCluster, { taskQueue, workflowId: `recover-${cluster}`, args: [{ cluster, ...extra }] });
    script = { policy: {}, probes: [], clusterPolicy: { approval: 'required', approvalTimeoutSeconds: 2 } };
    const waits = await start(`cfg-required-${n++}`);
    await expect(waits.result()).rejects.toThrow();
    const err = await waits.result().catch((e: Error & { cause?: Error }) => e.cause?.message ?? e.message);
    expect(err).toMatch(/not approved within 2 s; nothing was changed/);
    expect(calls).not.toContain('stopControlPlane');
    script = { policy: {}, probes: [], clusterPolicy: { approval: 'auto', approvalTimeoutSeconds: 2 } };
    const auto = await (await start(`cfg-auto-${n++}`)).result();
    expect(auto.outcome).toBe('restored');
    expect(auto.approval).toMatchObject({ decision: 'auto' });
  });

  it('a backup started with malformed input fails at once, naming the field, instead of wedging its workflow task', async () => {
    for (const [i, input] of ([null, { cluster: 42 }, { cluster: 'prod', reason: 'r'.repeat(200_000) }] as unknown[]).entries()) {
      const handle = await client.workflow.start(backupCluster, {
        taskQueue,
        workflowId: `backup-bad-${Date.now()}-${i}`,
        args: [input as never],
      });
      const err = await handle.result().then(
        () => 'completed',
        (e: Error & { cause?: Error }) => e.cause?.message ?? e.message,
      );
      expect(err).toMatch(/^invalid backup input: (input|cluster|reason): /);
      expect((await handle.describe()).status.name).toBe('FAILED');
    }
    expect(calls).toEqual([]);
    // The health check (schedules, UI) too.
    const health = await client.workflow.start(checkClusterHealth, {
      taskQueue,
      workflowId: `health-bad-${Date.now()}`,
      args: [null as never],
    });
    await expect(health.result()).rejects.toThrow();
    expect((await health.describe()).status.name).toBe('FAILED');
    expect(calls).toEqual([]);
  });

  it('refuses a second restore within recovery.cooldown of a successful one, unless a person overrides it', async () => {
    script = { policy: {}, probes: [] };
    const cluster = `cooldown-${n++}`;
    const first = await client.workflow.execute(recoverCluster, {
      taskQueue,
      workflowId: `recover-${cluster}`,
      args: [{ cluster, approval: 'auto' }],
    });
    expect(first.outcome).toBe('restored');
    const refused = await refuseWithinCooldown(client, cluster, 30 * 60_000, false).then(
      () => 'allowed',
      (e: Error & { type?: string }) => `${e.type}: ${e.message}`,
    );
    expect(refused).toMatch(
      /^RecentlyRecovered: cluster "cooldown-\d+" was restored 0 min ago \(from k\.db, run .*\), within recovery\.cooldown; .*overrideCooldown: true \(CLI: --override-cooldown\)/,
    );
    await expect(refuseWithinCooldown(client, cluster, 30 * 60_000, true)).resolves.toBeUndefined();
    await expect(refuseWithinCooldown(client, cluster, 0, false)).resolves.toBeUndefined();
    // A dry run or a rejected recovery restored nothing: no cooldown after it.
    const planned = `cooldown-${n++}`;
    expect(
      (
        await client.workflow.execute(recoverCluster, {
          taskQueue,
          workflowId: `recover-${planned}`,
          args: [{ cluster: planned, dryRun: true }],
        })
      ).outcome,
    ).toBe('planned');
    await expect(refuseWithinCooldown(client, planned, 30 * 60_000, false)).resolves.toBeUndefined();
  });

  it('fails fast on hostile input, before any activity', async () => {
    const bad = client.workflow.execute(respondToAlert, {
      taskQueue,
      workflowId: `respond-bad-${Date.now()}`,
      args: [{ cluster: 'c; rm -rf /', alert: { ...alert, name: 'x'.repeat(300), labels: { 'a b': '1' } } }],
    });
    await expect(bad).rejects.toThrow();
    const err = await bad.catch((e: Error & { cause?: Error }) => e.cause?.message ?? e.message);
    expect(err).toMatch(/cluster: expected a cluster name/);
    expect(err).toMatch(/alert\.name/);
    expect(err).toMatch(/alert\.labels/);
  });
});
