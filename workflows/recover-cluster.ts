import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  log,
  deprecatePatch,
  patched,
  proxyActivities,
  setHandler,
  setWorkflowOptions,
  workflowInfo,
  type WorkflowInfo,
} from '@temporalio/workflow';
import type { Activities, ClusterSummary } from '../activities';
import type { RecoveryPlan, RecoveryStepStatus } from '../src/recovery/plan';
import { normalizeRecoveryInput, recoveryInputProblems, type NormalizedRecoveryInput, type RecoverClusterInput } from './recovery-input';
import { runKeyOf } from './run-key';
import { failureMessage, stepFailure } from './step-failure';
import { ACTIVITY_OPTIONS } from './activity-options';
import type { PointPlan } from '../src/continuous/point';
import type { BuiltPoint } from '../activities/continuous/point';
import { labelled } from './run-labels';
import { withClaim } from './claim';
import { recoveryWorkflowId, wrongWorkflowIdProblem } from './run-ids';
import { approvalDecisionProblems, type ApprovalDecision } from './approval-input';
import { ignoredSignal, type IgnoredSignals } from './input-shape';

export type { ApprovalDecision };

export const approveSignal = defineSignal<[ApprovalDecision]>('approve');
export const rejectSignal = defineSignal<[ApprovalDecision]>('reject');
export const progressQuery = defineQuery<RecoveryProgress>('progress');

export interface RecoveryProgress {
  cluster: string;
  state: 'planning' | 'awaiting-approval' | 'running' | 'succeeded' | 'failed' | 'rejected' | 'planned';
  steps: RecoveryStepStatus[];
  plan?: RecoveryPlan;
  /** Who decided and why, and when (decisions recorded before `at` was kept have none). */
  approval?: ApprovalDecision & { decision: 'approved' | 'rejected' | 'auto'; at?: string };
  /** Approve/reject signals ignored as malformed (not a decision): how many, and the first one's problem. */
  ignoredSignals?: IgnoredSignals;
  /** A restore to a point (input `at`): the base, the segments, the exact revision and time, what is left out. */
  point?: PointPlan & { built?: BuiltPoint };
}

export interface RecoverClusterResult {
  cluster: string;
  outcome: 'restored' | 'planned' | 'rejected';
  plan: RecoveryPlan;
  point?: RecoveryProgress['point'];
  approval?: RecoveryProgress['approval'];
  ignoredSignals?: IgnoredSignals;
  /** Where the replaced data dir and manifests were kept. */
  previousDataDir?: string | null;
  manifestsMovedTo?: string;
  verification?: Awaited<ReturnType<Activities['verifyApi']>>;
  steps: RecoveryStepStatus[];
  /** How old the restored data is (backup time to the start of this run), and how long the cluster was down. */
  rpoSeconds: number;
  downtimeSeconds?: number;
  reason?: string;
}

const STEPS = [
  'plan',
  'approval',
  'pause backups',
  'fetch',
  'stop control plane',
  'restore',
  'start control plane',
  'verify',
  'resume backups',
];

const quick = proxyActivities<Activities>(ACTIVITY_OPTIONS.quick);
const transfer = proxyActivities<Activities>(ACTIVITY_OPTIONS.transfer);
const waiting = proxyActivities<Activities>(ACTIVITY_OPTIONS.waiting);
const watched = proxyActivities<Activities>(ACTIVITY_OPTIONS.quickHeartbeating);
const building = proxyActivities<Activities>(ACTIVITY_OPTIONS.drill);
const chainRead = proxyActivities<Activities>(ACTIVITY_OPTIONS.chainRead);

/**
 * Restores a cluster's control plane from a backup, in place or onto a new node: plan and preflight, approval,
 * backups paused, snapshot fetched and checked on the node, static pods stopped, etcd restored into a new folder and
 * swapped in by rename (the old one kept), control plane started, API verified. A failure after the stop puts the
 * node back as it was (unless told to keep the restored state). Workflow id: recover-<cluster>, one at a time.
 */
export async function recoverCluster(rawInput: RecoverClusterInput): Promise<RecoverClusterResult> {
  return labelled({ kind: 'recovery', input: rawInput, summary: () => recoverySummary(rawInput), outcome: (r) => r.outcome }, () =>
    recover(rawInput),
  );
}
// With Worker Versioning on (temporal.deployment), a recovery runs to its end on the worker version it started on,
// and so do the children it starts on its own queue (its claim): an upgrade mid-recovery never replays it with other
// code. Every other workflow takes the worker's default, AUTO_UPGRADE. Off, this changes nothing: the server refuses
// a versioning behavior from an unversioned worker, so it is only declared when the worker has a deployment version.
setWorkflowOptions(() => (workflowInfo().currentDeploymentVersion?.deploymentName ? { versioningBehavior: 'PINNED' } : {}), recoverCluster);

/** "dry-run recovery of prod from latest (in-place): etcd corrupt", or undefined for an input the workflow refuses. */
function recoverySummary(rawInput: RecoverClusterInput): string | undefined {
  if (recoveryInputProblems(rawInput).length) return undefined;
  const i = normalizeRecoveryInput(rawInput);
  const what = `${i.dryRun ? 'dry-run recovery' : 'recovery'} of ${i.cluster} from ${i.at ? `the point ${i.at}` : i.snapshot} (${i.mode}${i.target ? ` onto ${i.target}` : ''})`;
  return i.reason ? `${what}: ${i.reason}` : what;
}

async function recover(rawInput: RecoverClusterInput): Promise<RecoverClusterResult> {
  const problems = recoveryInputProblems(rawInput);
  if (problems.length) throw ApplicationFailure.nonRetryable(`invalid recovery input: ${problems.join('; ')}`, 'InvalidInput');
  const input = normalizeRecoveryInput(rawInput);
  const info = workflowInfo();
  const progress: RecoveryProgress = {
    cluster: input.cluster,
    state: 'planning',
    steps: STEPS.map((step) => ({ step, status: 'pending' })),
  };
  // Answered from the first moment, also while the claim is being taken.
  setHandler(progressQuery, () => progress);
  if (patched('one-recovery-per-cluster')) {
    const wrongId = wrongWorkflowIdProblem(
      'recovery',
      info.workflowId,
      recoveryWorkflowId(input.cluster),
      `lifeboat restore ${input.cluster}`,
    );
    if (wrongId) throw ApplicationFailure.nonRetryable(wrongId, 'WrongWorkflowId');
    // And not while anything else changes the cluster (an import that would change what "latest" is).
    return withClaim(`cluster-${input.cluster}`, `cluster ${input.cluster}`, () => recoverClaimed(rawInput, input, info, progress));
  }
  return recoverClaimed(rawInput, input, info, progress);
}

async function recoverClaimed(
  rawInput: RecoverClusterInput,
  input: NormalizedRecoveryInput,
  info: WorkflowInfo,
  progress: RecoveryProgress,
): Promise<RecoverClusterResult> {
  const runKey = runKeyOf(info.runId);
  let decision: (ApprovalDecision & { decision: 'approved' | 'rejected'; at?: string }) | undefined;
  // A signal is as untrusted as the input (the UI's signal form, the CLI, scripts) and the server cannot refuse it: a
  // malformed one is counted and ignored, never recorded as a decision. Runs recorded before took any payload.
  const checkSignals = patched('strict-approval-signals');
  const decide = (signal: 'approve' | 'reject', d: ApprovalDecision) => {
    if (!checkSignals) return void (decision ??= { ...d, decision: signal === 'approve' ? 'approved' : 'rejected' });
    const problems = approvalDecisionProblems(d, signal);
    if (problems.length) {
      progress.ignoredSignals = ignoredSignal(progress.ignoredSignals, problems);
      return void log.warn('ignored a malformed approval signal', { cluster: input.cluster, problem: progress.ignoredSignals.first });
    }
    // Only the checked fields, so the audit trail is exactly who, why and when.
    decision ??= {
      by: d.by.trim(),
      ...(d.reason?.trim() ? { reason: d.reason.trim() } : {}),
      decision: signal === 'approve' ? 'approved' : 'rejected',
      at: new Date().toISOString(),
    };
  };
  setHandler(approveSignal, (d) => decide('approve', d));
  setHandler(rejectSignal, (d) => decide('reject', d));

  const stepOf = (name: string) => progress.steps.find((s) => s.step === name)!;
  let current = 'plan';
  const step = async <T>(name: string, body: () => Promise<T>, detail?: (r: T) => string): Promise<T> => {
    current = name;
    const s = stepOf(name);
    s.status = 'running';
    s.startedAt = new Date().toISOString();
    try {
      const r = await body();
      s.status = 'done';
      s.detail = detail?.(r);
      return r;
    } catch (err) {
      s.status = 'failed';
      s.detail = failureMessage(err);
      if (name === 'plan') throw stepFailure(input.cluster, name, err, 'RecoveryFailed'); // nothing to undo yet
      throw err;
    } finally {
      s.endedAt = new Date().toISOString();
    }
  };
  const skip = (...names: string[]) => names.forEach((n) => (stepOf(n).status = 'skipped'));

  const planInput = {
    cluster: input.cluster,
    snapshot: input.snapshot,
    target: input.target,
    targetHostKey: input.targetHostKey,
    mode: input.mode,
    runKey,
    overrideCooldown: input.overrideCooldown,
    acceptUnsignedManifest: input.acceptUnsignedManifest,
  };
  let policy: ClusterSummary['recovery'];
  let plan = await step(
    'plan',
    async () => {
      policy = (await quick.resolveCluster({ cluster: input.cluster })).recovery;
      if (input.at) {
        // A point is proven from the bucket first, then rebuilt off the control plane into a backup of its own, which
        // is what the rest of the run restores; a dry run shows the point and plans with its base.
        const point: RecoveryProgress['point'] = await chainRead.planPointInTime({
          cluster: input.cluster,
          at: input.at,
          stopAtBreak: input.stopAtBreak,
        });
        progress.point = point;
        planInput.snapshot = point.base.manifestKey;
        if (!input.dryRun) {
          point.built = await building.buildPoint({
            cluster: input.cluster,
            plan: point,
            runKey: `point-${runKey}`,
            workflow: { workflowId: info.workflowId, runId: info.runId },
          });
          planInput.snapshot = point.built.manifestKey;
        }
      }
      return quick.planRecovery(planInput);
    },
    (p) =>
      `${progress.point ? `point ${progress.point.time} (revision ${progress.point.revision}, base ${progress.point.base.manifestKey} + ${progress.point.segments} segments), ` : ''}backup ${p.snapshot.key} (revision ${p.snapshot.revision}) onto node ${p.node}${p.skipped.length ? `; passed over: ${p.skipped.map((s) => `${s.manifestKey} (${s.reason})`).join(', ')}` : ''}`,
  );
  progress.plan = plan;
  const result = (outcome: RecoverClusterResult['outcome'], extra: Partial<RecoverClusterResult> = {}): RecoverClusterResult => ({
    cluster: input.cluster,
    outcome,
    plan,
    ...(progress.point ? { point: progress.point } : {}),
    approval: progress.approval,
    ...(progress.ignoredSignals ? { ignoredSignals: progress.ignoredSignals } : {}),
    steps: progress.steps,
    rpoSeconds: Math.round((Date.parse(info.startTime.toISOString()) - Date.parse(plan.snapshot.created)) / 1000),
    reason: input.reason,
    ...extra,
  });
  if (input.dryRun) {
    progress.state = 'planned';
    skip(...STEPS.slice(1));
    return result('planned');
  }

  // The cluster's recovery.approval and approvalTimeout apply to every start that does not choose for itself; histories
  // recorded before the policy was returned (policy undefined) keep the old defaults, so they replay unchanged.
  const approval = rawInput.approval ?? policy?.approval ?? input.approval;
  if (approval === 'required') {
    progress.state = 'awaiting-approval';
    const approvalStep = stepOf('approval');
    approvalStep.status = 'running';
    approvalStep.startedAt = new Date().toISOString();
    const timeoutMs = (input.approvalTimeoutSeconds ?? policy?.approvalTimeoutSeconds ?? 3600) * 1000;
    const decided = await condition(() => decision !== undefined, timeoutMs);
    approvalStep.endedAt = new Date().toISOString();
    if (!decided || decision!.decision === 'rejected') {
      approvalStep.status = 'failed';
      const ignored = progress.ignoredSignals
        ? ` (${progress.ignoredSignals.count} malformed approval signal(s) ignored, the first: ${progress.ignoredSignals.first})`
        : '';
      approvalStep.detail = decided
        ? `rejected by ${decision!.by}${decision!.reason ? `: ${decision!.reason}` : ''}`
        : `no decision within ${timeoutMs / 1000} s${ignored}`;
      progress.approval = decided ? decision : undefined;
      progress.state = 'rejected';
      skip(...STEPS.slice(2));
      if (!decided)
        throw ApplicationFailure.nonRetryable(
          `cluster "${input.cluster}": recovery not approved within ${timeoutMs / 1000} s; nothing was changed${ignored}`,
          'ApprovalTimeout',
        );
      return result('rejected');
    }
    approvalStep.status = 'done';
    approvalStep.detail = `approved by ${decision!.by}${decision!.reason ? `: ${decision!.reason}` : ''}`;
    progress.approval = decision;
  } else {
    skip('approval');
    progress.approval = { by: 'policy', decision: 'auto' };
  }

  progress.state = 'running';
  const timeoutSeconds = input.controlPlaneTimeoutSeconds ?? 300;
  const paused = await step(
    'pause backups',
    () => quick.pauseBackups({ cluster: input.cluster, note: `paused by ${info.workflowId} (recovery)` }),
    (p) => (p.paused ? `paused ${p.scheduleId}` : p.existed ? `${p.scheduleId} was already paused: left as is` : 'no backup schedule'),
  );
  let stopped = false;
  let downSince: number | undefined;
  let restoredDir: { previousDataDir: string | null } | undefined;
  try {
    const passOver: { manifestKey: string; reason: string }[] = [];
    await step(
      'fetch',
      async () => {
        for (;;) {
          try {
            const fetched = await transfer.fetchSnapshot({ plan });
            if (plan.mode === 'new-node') await transfer.restoreControlPlaneFiles({ plan });
            return fetched;
          } catch (err) {
            // "latest" means the newest backup that verifies. One whose bytes fail the check on the way to the node
            // (the bucket's checksum agreed, the content did not) is passed over like one caught by the plan; the
            // node has not been changed yet. A backup named by key is never substituted.
            const corrupt =
              input.snapshot === 'latest' &&
              !input.at &&
              err instanceof ActivityFailure &&
              err.cause instanceof ApplicationFailure &&
              err.cause.type === 'CorruptSnapshot';
            if (!corrupt) throw err;
            // No recorded history took the old path (a corrupt fetch failed the run): only the marker remains.
            deprecatePatch('latest-passes-over-corrupt-fetch');
            passOver.push({ manifestKey: plan.snapshot.manifestKey, reason: `failed verification while fetched: ${failureMessage(err)}` });
            log.warn('passing over a backup that failed verification while fetched', {
              cluster: input.cluster,
              manifestKey: plan.snapshot.manifestKey,
            });
            plan = await quick.planRecovery({ ...planInput, passOver });
            progress.plan = plan;
          }
        }
      },
      (f) =>
        `${f.path}${f.reused ? ' (already there)' : ''}${passOver.length ? `; passed over ${passOver.map((p) => p.manifestKey).join(', ')}` : ''}`,
    );
    downSince = Date.now();
    stopped = true;
    const stop = await step(
      'stop control plane',
      () => waiting.stopControlPlane({ plan, timeoutSeconds }),
      (r) =>
        `moved ${r.moved.join(', ') || 'nothing'} to ${r.to}${r.forced?.length ? `; stopped through the container runtime: ${r.forced.join(', ')}` : ''}${r.criUnavailable ? `; container runtime not used (${r.criUnavailable})` : ''}`,
    );
    const restored = await step(
      'restore',
      () => waiting.restoreEtcdData({ plan }),
      (r) => `${r.restoredWith}; previous data dir kept at ${r.previousDataDir ?? '(none)'}`,
    );
    restoredDir = restored;
    await step(
      'start control plane',
      () => waiting.startControlPlane({ plan, timeoutSeconds }),
      (r) => `started ${r.started.join(', ')}${r.annotated?.length ? ' (as new pods: annotated lifeboat/recovery)' : ''}`,
    );
    const verification = await step(
      'verify',
      () => watched.verifyApi({ plan }),
      (v) =>
        `${v.namespaces.length} namespaces; ${v.matched.length} resources match the backup${v.differed.length ? `, ${v.differed.length} differ (volatile)` : ''}${v.controlPlaneNode ? `; Node ${v.controlPlaneNode.node} Ready` : ''}`,
    );
    const downtimeSeconds = Math.round((Date.now() - downSince) / 1000);
    progress.state = 'succeeded';
    return result('restored', { previousDataDir: restored.previousDataDir, manifestsMovedTo: stop.to, verification, downtimeSeconds });
  } catch (err) {
    progress.state = 'failed';
    log.error('recovery failed', { cluster: input.cluster, step: current, error: failureMessage(err) });
    if (stopped && !input.keepRestoredOnFailure) {
      // Saga compensation, not cancellable: the node must not be left half-restored.
      await CancellationScope.nonCancellable(async () => {
        const r = await watched.rollbackRecovery({ plan });
        const s = stepOf(current);
        s.status = 'compensated';
        s.detail = `${s.detail ?? ''}; rolled back: ${r.actions.join(', ') || 'nothing to undo'}`;
      });
    }
    if (stopped && input.keepRestoredOnFailure) {
      // Nothing is undone: say where everything is, so the person who asked for this can look and decide.
      const { paths } = plan;
      const kept = restoredDir
        ? `kept as restored (keepRestoredOnFailure): the restored data dir is ${paths.dataDir}, the previous one ${restoredDir.previousDataDir ?? '(none)'}, the original manifests in ${paths.asideManifestsDir}`
        : `not rolled back (keepRestoredOnFailure): the data dir ${paths.dataDir} is as the failed step left it (a finished restore would be ${paths.restoreDir}), the original manifests in ${paths.asideManifestsDir}`;
      const s = stepOf(current);
      s.detail = `${s.detail ?? ''}; ${kept}`;
      throw stepFailure(input.cluster, current, err, 'RecoveryFailed', kept);
    }
    throw stepFailure(input.cluster, current, err, 'RecoveryFailed');
  } finally {
    await CancellationScope.nonCancellable(async () => {
      if (paused.paused)
        await step(
          'resume backups',
          () => quick.resumeBackups({ cluster: input.cluster, note: `resumed by ${info.workflowId}` }),
          () => 'resumed',
        );
      else skip('resume backups');
    });
  }
}
