import type { ActivityDeps } from './deps';

export interface ClaimHolder {
  /** The workflow id of the run holding the claim (the claim workflow's parent). */
  holder?: string;
  holderRunning: boolean;
}

/**
 * Who holds a claim (workflows/claim.ts). A claim whose holder has closed is one the server has not ended yet: it is
 * terminated here, so the run asking can take it.
 */
export function claimHolder(deps: ActivityDeps) {
  return async (input: { workflowId: string }): Promise<ClaimHolder> => {
    if (!deps.client) throw new Error('this worker has no Temporal client to look up who holds a claim');
    const claim = deps.client.workflow.getHandle(input.workflowId);
    const d = await claim.describe();
    if (d.status.name !== 'RUNNING') return { holderRunning: false };
    const holder = d.parentExecution?.workflowId ?? undefined;
    if (!holder) return { holderRunning: true };
    const p = await deps.client.workflow.getHandle(holder, d.parentExecution?.runId ?? undefined).describe();
    if (p.status.name === 'RUNNING') return { holder, holderRunning: true };
    await claim.terminate(`its holder ${holder} has ended (${p.status.name})`).catch(() => undefined);
    return { holder, holderRunning: false };
  };
}
