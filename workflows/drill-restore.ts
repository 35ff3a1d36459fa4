import { withClaim } from './claim';
import { ApplicationFailure, CancellationScope, log, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DrillReport } from '../src/drill/report';
import { ACTIVITY_OPTIONS } from './activity-options';
import { drillInputProblems, type DrillRestoreInput } from './drill-input';
import { runKeyOf } from './run-key';
import { labelled } from './run-labels';
import { failureMessage, stepFailure } from './step-failure';

export type { DrillRestoreInput };

export interface DrillRestoreResult {
  cluster: string;
  manifestKey: string;
  result: 'passed';
  reportKey?: string;
  countedThrough: DrillReport['countedThrough'];
  checks: string[];
  counts: DrillReport['counts'];
  passedOver: DrillReport['passedOver'];
  durationSeconds: number;
  reason?: string;
}

const quick = proxyActivities<Activities>(ACTIVITY_OPTIONS.quick);
const drilling = proxyActivities<Activities>(ACTIVITY_OPTIONS.drill);
const chainRead = proxyActivities<Activities>(ACTIVITY_OPTIONS.chainRead);

/**
 * A restore drill: proves on the drill host (the worker or drill.node, never a cluster's node) that a backup restores — fetched and verified
 * like a recovery's, restored with etcd's own tools of its version into a throwaway etcd and kube-apiserver, counted
 * and read back — then removes all of it and writes `<base>.drill.json` beside the backup. A drill that finds a
 * problem fails, naming the backup and the problem.
 */
export async function drillRestore(input: DrillRestoreInput): Promise<DrillRestoreResult> {
  // Labelled like every other run, so the UI's filters (LifeboatRun = "drill") and `lifeboat status` find drills.
  return labelled(
    {
      kind: 'drill',
      input,
      summary: () =>
        drillInputProblems(input).length
          ? undefined
          : `drill of ${input.cluster}: ${input.snapshot ?? 'latest'}${input.reason ? ` (${input.reason})` : ''}`,
      outcome: (r) => r.result,
    },
    () => drillRestoreRun(input),
  );
}

async function drillRestoreRun(input: DrillRestoreInput): Promise<DrillRestoreResult> {
  const problems = drillInputProblems(input);
  if (problems.length) throw ApplicationFailure.nonRetryable(`invalid drill input: ${problems.join('; ')}`, 'InvalidInput');
  const info = workflowInfo();
  const runKey = `${input.cluster}-${runKeyOf(info.runId)}`;
  const started = Date.now();
  const seconds = () => Math.round((Date.now() - started) / 100) / 10;
  let step = 'plan';
  let manifestKey: string | undefined;
  let recorded = false;
  try {
    const plan = await quick.planDrill({ cluster: input.cluster, snapshot: input.snapshot ?? 'latest' });
    manifestKey = plan.manifestKey;
    let findings;
    if (plan.problem) {
      findings = {
        checks: [],
        problems: [plan.problem],
        countedThrough: 'none' as const,
        counts: { matched: [], differed: [] },
        sampled: {},
        certificates: [],
      };
    } else {
      step = 'restore';
      try {
        const run = () => drilling.runDrill({ cluster: plan.cluster, manifestKey: plan.manifestKey, runKey });
        // A drill node is changed by the drill (a throwaway etcd and kube-apiserver, scratch files): one drill at a time.
        findings =
          plan.drillNode && patched('one-drill-per-drill-node')
            ? await withClaim(`drill-node-${plan.drillNode}`, `drill node ${plan.drillNode}`, run)
            : await run();
      } finally {
        // A failed drill is reported under its own step, not the clean-up that follows it.
        const failedAt = step;
        step = 'clean up';
        // Also when the drill failed or its worker died: nothing it started may outlive it.
        await CancellationScope.nonCancellable(() => quick.cleanupDrill({ runKey }));
        step = failedAt;
      }
    }
    if (plan.continuous && patched('drill-checks-newest-chain')) {
      step = 'chain';
      const chain = await drillChain(plan.cluster, `chain-${runKey}`, { workflowId: info.workflowId, runId: info.runId });
      findings = { ...findings, ...(chain.check ? { checks: [...findings.checks, chain.check] } : {}) };
      if (chain.problem) findings = { ...findings, problems: [...findings.problems, chain.problem] };
    }
    step = 'report';
    const passed = findings.problems.length === 0;
    const report = {
      cluster: plan.cluster,
      manifestKey: plan.manifestKey,
      result: passed ? ('passed' as const) : ('failed' as const),
      started: new Date(started).toISOString(),
      finished: new Date(Date.now()).toISOString(),
      durationSeconds: seconds(),
      ...findings,
      passedOver: plan.passedOver,
      workflow: { workflowId: info.workflowId, runId: info.runId },
    };
    const { reportKey } = await quick.recordDrill({ cluster: plan.cluster, report, passed, durationSeconds: report.durationSeconds });
    recorded = true;
    step = 'checks';
    if (!passed) {
      throw ApplicationFailure.nonRetryable(
        `backup ${plan.manifestKey} failed its restore drill: ${findings.problems.join('; ')}${reportKey ? ` (report: ${reportKey})` : ''}`,
        'DrillFailed',
        { manifestKey: plan.manifestKey, problems: findings.problems, reportKey },
      );
    }
    log.info('drill passed', { cluster: plan.cluster, manifestKey: plan.manifestKey });
    return {
      cluster: plan.cluster,
      manifestKey: plan.manifestKey,
      result: 'passed',
      reportKey,
      countedThrough: findings.countedThrough,
      checks: findings.checks,
      counts: findings.counts,
      passedOver: plan.passedOver,
      durationSeconds: report.durationSeconds,
      reason: input.reason,
    };
  } catch (err) {
    log.error('drill failed', { cluster: input.cluster, step, manifestKey, error: (err as Error).message });
    if (!recorded) await quick.recordDrill({ cluster: input.cluster, passed: false, durationSeconds: seconds() }).catch(() => undefined);
    if (err instanceof ApplicationFailure && err.type === 'DrillFailed') throw err;
    throw stepFailure(input.cluster, step, err, 'DrillFailed');
  }
}

/**
 * Continuous backups: the newest chain is proven from the bucket and rebuilt on the worker (its base restored, every
 * segment replayed, the revision asserted after each), stored nowhere, and its events compared with the counts its
 * signed segments give. A chain that does not restore is a failed drill, as a backup that does not restore is.
 */
async function drillChain(
  cluster: string,
  runKey: string,
  workflow: { workflowId: string; runId: string },
): Promise<{ check?: string; problem?: string }> {
  try {
    const point = await chainRead.planPointInTime({ cluster, at: 'newest' });
    if (point.segments === 0) return { check: `chain ${point.chain}: no segments yet (the base is the newest point)` };
    const built = await drilling.buildPoint({ cluster, plan: point, runKey, workflow, store: false });
    const r = built.replay!;
    if (r.events !== r.counted)
      return { problem: `chain ${point.chain}: ${r.events} events replayed where its segments count ${r.counted}` };
    return {
      check: `chain ${point.chain}: base ${point.base.manifestKey} + ${r.segments} segments replayed on the worker, ${r.events} events as the segments count them, exactly at revision ${point.revision} (${point.time})${r.leased.keys ? `; ${r.leased.keys} leased keys under ${r.leased.leases} leases` : ''}`,
    };
  } catch (err) {
    return { problem: `the newest chain does not restore: ${failureMessage(err)}` };
  }
}
