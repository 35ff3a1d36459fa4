import {
  ApplicationFailure,
  ChildWorkflowFailure,
  condition,
  defineQuery,
  defineSignal,
  executeChild,
  log,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ACTIVITY_OPTIONS } from './activity-options';
import { labelled } from './run-labels';
import { recoveryWorkflowId, responseWorkflowId, wrongWorkflowIdProblem } from './run-ids';
import type { Activities } from '../activities';
import type { HealthReport } from '../activities/health/check-health';
import { etcdDataUnchecked, troublesOf } from '../src/health/troubles';
import type { Diagnosis } from '../activities/response/diagnose';
import type { ResponseEvent } from '../activities/response/notify';
import type { ResponsePolicy } from '../activities/response/policy';
import { recoverCluster, type RecoverClusterResult } from './recover-cluster';
import type { RecoverClusterInput } from './recovery-input';
import { runMetadata } from '../src/temporal/run-metadata';
import { alertNoticeProblems, responseInputProblems, type AlertNotice, type RespondToAlertInput } from './response-input';
import { ignoredSignal, type IgnoredSignals } from './input-shape';

/** Further alerts of the same cluster (firing or resolved) while the response runs; the receiver sends them. */
export const alertSignal = defineSignal<[AlertNotice]>('alert');
export const responseQuery = defineQuery<ResponseProgress>('response');

export type ResponseOutcome =
  'stood-down' | 'no-restore' | 'notified' | 'planned' | 'recovered' | 'rejected' | 'recovery-failed' | 'already-recovering';

export interface ProbeEvidence {
  at: string;
  down: string[];
  detail: string[];
}

export interface ResponseProgress {
  cluster: string;
  state: 'confirming' | 'diagnosing' | 'recovering' | 'done';
  policy?: ResponsePolicy['onAlert'];
  /** Alerts seen, by fingerprint, with their last status. */
  alerts: Record<string, { name: string; status: AlertNotice['status'] }>;
  evidence: ProbeEvidence[];
  diagnosis?: Diagnosis;
  /** Alert signals ignored as malformed: how many, and the first one's problem. */
  ignoredSignals?: IgnoredSignals;
}

export interface RespondToAlertResult {
  cluster: string;
  outcome: ResponseOutcome;
  /** One line for people: what was found and what was (not) done. */
  summary: string;
  policy: ResponsePolicy['onAlert'];
  evidence: ProbeEvidence[];
  diagnosis?: Diagnosis;
  recovery?: { workflowId: string; outcome?: RecoverClusterResult['outcome']; snapshot?: string; error?: string };
  notifications: { event: ResponseEvent; sent: boolean; error?: string }[];
  ignoredSignals?: IgnoredSignals;
}

const quick = proxyActivities<Activities>(ACTIVITY_OPTIONS.response);
const probe = proxyActivities<Activities>(ACTIVITY_OPTIONS.diagnosis);
const outbound = proxyActivities<Activities>(ACTIVITY_OPTIONS.outbound);
const chainRead = proxyActivities<Activities>(ACTIVITY_OPTIONS.chainRead);

/**
 * What happens when an alert says a cluster's control plane is in trouble. Workflow id respond-<cluster>: the
 * receiver starts it or, when it runs, signals it, so a storm of alerts gives one response.
 * 1. Confirm: probe again, several times over the configured window. A component that answers again, or an alert
 *    that resolves, stands the response down. Nothing on the node is changed before this.
 * 2. Diagnose: what kind of failure it is (node gone, etcd data lost or corrupt, only some components down, disk
 *    full, certificates expired). Only lost or corrupt data, or a lost node with a standby, is a restore case.
 * 3. Decide by the cluster's `recovery.onAlert` policy and act: the recovery runs as the child recover-<cluster>,
 *    the same workflow the CLI and the UI start, so there is one recovery per cluster whoever asks.
 */
export async function respondToAlert(rawInput: RespondToAlertInput): Promise<RespondToAlertResult> {
  return labelled(
    {
      kind: 'response',
      input: rawInput,
      summary: () =>
        responseInputProblems(rawInput).length ? undefined : `response to alert ${rawInput.alert.name} on ${rawInput.cluster}`,
      outcome: (r) => r.outcome,
    },
    () => respond(rawInput),
  );
}

async function respond(rawInput: RespondToAlertInput): Promise<RespondToAlertResult> {
  // Unknown fields and size inside the alert (the input's and the signals') are refused since strict schemas; runs
  // recorded before let them through and replay as they ran.
  const strict = patched('strict-alert-schemas');
  const problems = responseInputProblems(rawInput, strict);
  if (problems.length) throw ApplicationFailure.nonRetryable(`invalid alert response input: ${problems.join('; ')}`, 'InvalidInput');
  const input = rawInput;
  const cluster = input.cluster;
  const info = workflowInfo();
  if (patched('one-response-per-cluster')) {
    const wrongId = wrongWorkflowIdProblem('alert response', info.workflowId, responseWorkflowId(cluster), 'the alert receiver does');
    if (wrongId) throw ApplicationFailure.nonRetryable(wrongId, 'WrongWorkflowId');
  }
  const progress: ResponseProgress = { cluster, state: 'confirming', alerts: {}, evidence: [] };
  const firing = new Set<string>();
  const see = (a: AlertNotice) => {
    progress.alerts[a.fingerprint] = { name: a.name, status: a.status };
    if (a.status === 'firing') firing.add(a.fingerprint);
    else firing.delete(a.fingerprint);
  };
  see(input.alert);
  setHandler(responseQuery, () => progress);
  setHandler(alertSignal, (a) => {
    // Signals are as untrusted as the input: a malformed one is counted, logged and dropped, never allowed to fail the task.
    const bad = alertNoticeProblems(a, 'signal', strict);
    if (bad.length) {
      if (strict) progress.ignoredSignals = ignoredSignal(progress.ignoredSignals, bad);
      return void log.warn('ignored a malformed alert signal', { cluster, problems: bad.slice(0, 3) });
    }
    see(a);
  });

  const policy = await quick.responsePolicy({ cluster });
  progress.policy = policy.onAlert;
  const notifications: RespondToAlertResult['notifications'] = [];
  const tell = async (event: ResponseEvent, text: string) => {
    try {
      const r = await outbound.notify({ cluster, event, text, workflowId: info.workflowId });
      notifications.push({ event, sent: r.sent });
    } catch (err) {
      // A notification that cannot be sent never changes what the response does.
      notifications.push({ event, sent: false, error: messageOf(err) });
    }
  };
  const finish = async (
    outcome: ResponseOutcome,
    summary: string,
    extra: Partial<RespondToAlertResult> = {},
    event: ResponseEvent = outcome as ResponseEvent,
  ): Promise<RespondToAlertResult> => {
    progress.state = 'done';
    await tell(event, summary);
    return {
      cluster,
      outcome,
      summary,
      policy: policy.onAlert,
      evidence: progress.evidence,
      diagnosis: progress.diagnosis,
      notifications,
      ...(progress.ignoredSignals ? { ignoredSignals: progress.ignoredSignals } : {}),
      ...extra,
    };
  };

  // 1. Confirm.
  const probes = policy.confirmProbes;
  const gapMs = probes > 1 ? (policy.confirmWindowSeconds * 1000) / (probes - 1) : 0;
  let last: HealthReport | undefined;
  let unreachableSince: string | undefined;
  // The probes decide about etcd's data, not the alert. A probe that saw every component up but could not check the
  // data (bucket or Temporal too slow) proves neither health nor loss: it neither stands the response down nor feeds
  // the diagnosis. And once a probe found the data lost, the alert resolving does not end the response: the alert
  // was a component down, the kubelet brought it back, and that brings no data back. Histories from before these
  // rules took an unchecked probe as healthy and stood down on any resolution.
  const probesDecide = patched('probes-decide-etcd-data');
  const dataLost = () => probesDecide && last !== undefined && troublesOf(last).includes('etcd-data');
  const standDown = () => firing.size === 0 && !dataLost();
  let unchecked: string | undefined;
  for (let i = 0; i < probes; i++) {
    if (i > 0 && (await condition(standDown, gapMs))) break;
    if (standDown()) break;
    const report = await probe.checkHealth({ cluster });
    const down = troublesOf(report);
    const notChecked = probesDecide && down.length === 0 ? etcdDataUnchecked(report) : undefined;
    if (notChecked) {
      unchecked = notChecked;
      progress.evidence.push({ at: report.checkedAt, down, detail: [`etcd data not checked: ${notChecked}`] });
      continue;
    }
    last = report;
    const detail = down.map((t) =>
      t === 'etcd-data'
        ? `etcd-data: revision ${report.etcd?.revision} is below the newest backup's ${report.newestBackup?.revision}`
        : `${t}: ${report.components.find((c) => c.component === t)?.detail ?? ''}`,
    );
    progress.evidence.push({ at: report.checkedAt, down, detail });
    if (down.includes('node')) unreachableSince ??= report.checkedAt;
    if (down.length === 0) {
      return finish(
        'stood-down',
        `the control plane was healthy on probe ${i + 1} of ${probes}: the alert was transient; nothing was changed`,
      );
    }
  }
  if (standDown()) {
    return finish(
      'stood-down',
      `the alert resolved during the confirm window (${progress.evidence.length} probe(s) taken); nothing was changed`,
    );
  }
  if (!last) {
    // Every probe was inconclusive: an automated trigger that cannot prove the need changes nothing.
    return finish(
      'no-restore',
      `every component answered, but on none of ${progress.evidence.length} probe(s) could etcd's data be checked: ${unchecked}; ` +
        `nothing was changed. Check the bucket and Temporal from the worker, then \`lifeboat health ${cluster}\``,
    );
  }

  // 2. Diagnose.
  progress.state = 'diagnosing';
  const diagnosis = await quick.diagnoseCluster({ cluster, health: last, unreachableSince });
  progress.diagnosis = diagnosis;
  if (diagnosis.verdict === 'no-restore') {
    return finish('no-restore', `${diagnosis.summary}. Not a restore case: ${diagnosis.advice}`);
  }

  // 3. Decide and act. With continuous backups, to the newest durable point (seconds lost, not the backup interval),
  // once the bucket proves one; otherwise, or when the chain cannot be proven, the newest full backup.
  let from: Pick<RecoverClusterInput, 'snapshot' | 'at'> = { snapshot: 'latest' };
  let fromNote = '';
  if (policy.continuous && patched('alert-recovers-to-newest-point')) {
    try {
      const point = await chainRead.planPointInTime({ cluster, at: 'newest' });
      from = { at: 'newest' };
      fromNote = ` (to the newest durable point: ${point.time}, revision ${point.revision})`;
    } catch (err) {
      fromNote = ` (from the newest full backup: no continuous point can be proven: ${(err as Error).message.slice(0, 300)})`;
    }
  }
  const recovery: RecoverClusterInput = {
    cluster,
    ...from,
    mode: diagnosis.verdict === 'restore-new-node' ? 'new-node' : 'in-place',
    ...(diagnosis.target ? { target: diagnosis.target } : {}),
    reason: `alert ${input.alert.name}: ${diagnosis.summary}${fromNote}`.slice(0, 500),
  };
  if (policy.onAlert === 'notify') {
    return finish(
      'notified',
      `${diagnosis.summary}. Recommended: ${diagnosis.advice} (policy notify: nothing started; \`lifeboat restore ${cluster}${recovery.mode === 'new-node' ? ` --mode new-node --target ${recovery.target}` : ''}\`)`,
    );
  }
  if (policy.onAlert === 'plan') {
    recovery.dryRun = true;
  } else if (policy.onAlert === 'approve') {
    recovery.approval = 'required';
    recovery.approvalTimeoutSeconds = policy.approvalTimeoutSeconds;
    await tell(
      'needs-approval',
      `${diagnosis.summary}. A recovery waits for approval: \`lifeboat recovery approve ${cluster} --by <you>\` or reject (within ${policy.approvalTimeoutSeconds} s)`,
    );
  } else {
    recovery.approval = 'auto';
    await tell('recovery-started', `${diagnosis.summary}. Recovering (policy auto): ${diagnosis.advice}`);
  }

  progress.state = 'recovering';
  const workflowId = recoveryWorkflowId(cluster);
  try {
    const result = await executeChild(recoverCluster, {
      workflowId,
      args: [recovery],
      // The recovery outlives this response if the response is terminated: it must never be cut off half way.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      // What the UI shows at the top of the recovery and in its list, as for a start from the CLI.
      ...runMetadata({
        what: `${recovery.dryRun ? 'dry-run recovery' : 'recovery'} of ${cluster} (alert ${input.alert.name})`,
        cluster,
        backup: 'latest',
        reason: recovery.reason,
        startedBy: `the alert response ${workflowInfo().workflowId} (policy ${policy.onAlert})`,
      }),
    });
    const rec = { workflowId, outcome: result.outcome, snapshot: result.plan.snapshot.key };
    if (result.outcome === 'planned')
      return finish(
        'planned',
        `${diagnosis.summary}. Planned (policy plan, nothing changed): restore ${result.plan.snapshot.key} onto ${result.plan.node}`,
        { recovery: rec },
      );
    if (result.outcome === 'rejected')
      return finish(
        'rejected',
        `${diagnosis.summary}. The recovery was rejected${result.approval?.by ? ` by ${result.approval.by}` : ''}; nothing was changed`,
        { recovery: rec },
      );
    return finish('recovered', `${diagnosis.summary}. Restored ${result.plan.snapshot.key} onto ${result.plan.node}; API verified`, {
      recovery: rec,
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return finish(
        'already-recovering',
        `${diagnosis.summary}. A recovery (${workflowId}) is already running; follow it there`,
        { recovery: { workflowId } },
        'notified',
      );
    }
    const error = messageOf(err);
    const timedOut = err instanceof ChildWorkflowFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'ApprovalTimeout';
    if (timedOut)
      return finish('rejected', `${diagnosis.summary}. No approval within ${policy.approvalTimeoutSeconds} s; nothing was changed`, {
        recovery: { workflowId, error },
      });
    return finish(
      'recovery-failed',
      `${diagnosis.summary}. The recovery failed: ${error}`,
      { recovery: { workflowId, error } },
      'recovery-failed',
    );
  }
}

function messageOf(err: unknown): string {
  let e = err as Error & { cause?: unknown };
  while (e && (e instanceof ChildWorkflowFailure || e.name === 'ActivityFailure') && e.cause) e = e.cause as Error & { cause?: unknown };
  return (e?.message ?? String(err)).slice(0, 1000);
}
