import {
  ApplicationFailure,
  CancellationScope,
  condition,
  defineSignal,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../activities';
import { ACTIVITY_OPTIONS } from './activity-options';

const quick = proxyActivities<Activities>(ACTIVITY_OPTIONS.quick);
const releaseSignal = defineSignal('release');

/**
 * A claim on something only one run may change at a time (a cluster, a drill node), held by a child workflow with a
 * fixed id, `claim-<what>`. Temporal runs at most one workflow per id, so the second run that asks is refused at
 * once whatever its own id is (typed in the UI, started by a webhook). The holder releases it when it ends; if the
 * holder dies first (terminated, timed out), the server terminates the claim with it (ParentClosePolicy.TERMINATE).
 */
export async function holdClaim(...args: unknown[]): Promise<void> {
  // Typed into the UI's start form, it would take a claim no run holds (and keep its input in history): refused.
  const problems = claimInputProblems(args, workflowInfo().parent?.workflowId);
  if (problems.length) throw ApplicationFailure.nonRetryable(problems.join('; '), 'InvalidInput');
  let released = false;
  setHandler(releaseSignal, () => void (released = true));
  await condition(() => released);
}

export const claimWorkflowId = (what: string) => `claim-${what}`;

/** A claim is held only as the child of the run it belongs to, and takes no input. */
export function claimInputProblems(args: unknown[], parent: string | undefined): string[] {
  const problems: string[] = [];
  if (args.length) problems.push('input: holdClaim takes none (it is started by lifeboat runs, not by hand)');
  if (!parent) problems.push('holdClaim runs only as the child of the recovery, import or drill that holds the claim');
  return problems;
}

/**
 * Runs `body` holding the claim on `what`, or fails the run at once naming the run that holds it. A claim whose holder
 * has already closed (the server had not yet ended it) is cleared and taken.
 */
export async function withClaim<T>(what: string, describe: string, body: () => Promise<T>): Promise<T> {
  const workflowId = claimWorkflowId(what);
  const start = () => startChild(holdClaim, { workflowId, parentClosePolicy: ParentClosePolicy.TERMINATE });
  let child;
  try {
    child = await start();
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const held = await quick.claimHolder({ workflowId });
    if (held.holder && held.holderRunning)
      throw ApplicationFailure.nonRetryable(
        `${describe} is already being changed by workflow ${held.holder}; one at a time: follow that run, or start again once it has ended`,
        'AlreadyRunning',
        { claim: workflowId, holder: held.holder },
      );
    child = await start();
  }
  try {
    return await body();
  } finally {
    // Released whatever happened, also when this run is being cancelled.
    await CancellationScope.nonCancellable(async () => {
      await child.signal(releaseSignal).catch(() => undefined);
      await child.result().catch(() => undefined);
    });
  }
}
