import {
  ApplicationFailure,
  CancellationScope,
  condition,
  defineSignal,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  startChild,
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
export async function holdClaim(): Promise<void> {
  let released = false;
  setHandler(releaseSignal, () => void (released = true));
  await condition(() => released);
}

export const claimWorkflowId = (what: string) => `claim-${what}`;

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
