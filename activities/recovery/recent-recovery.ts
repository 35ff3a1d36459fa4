import { ApplicationFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';

/**
 * A second trigger shortly after a successful recovery (a late alert, a second operator) would restore the same
 * backup again and lose everything written since the first restore. Within `cooldownMs` after a recovery of this
 * cluster restored it, another one is refused unless a person overrides it (input overrideCooldown).
 */
export async function refuseWithinCooldown(
  client: Client | undefined,
  cluster: string,
  cooldownMs: number,
  override: boolean | undefined,
): Promise<void> {
  if (!client || cooldownMs <= 0 || override) return;
  const since = new Date(Date.now() - cooldownMs).toISOString();
  const query = `WorkflowId = 'recover-${cluster}' AND ExecutionStatus = 'Completed' AND CloseTime > '${since}'`;
  for await (const run of client.workflow.list({ query })) {
    const result = (await client.workflow
      .getHandle(run.workflowId, run.runId)
      .result()
      .catch(() => undefined)) as { outcome?: string; plan?: { snapshot?: { key?: string } } } | undefined;
    if (result?.outcome !== 'restored') continue;
    const minutes = Math.round((Date.now() - (run.closeTime?.getTime() ?? Date.now())) / 60_000);
    throw ApplicationFailure.nonRetryable(
      `cluster "${cluster}" was restored ${minutes} min ago (from ${result.plan?.snapshot?.key ?? 'a backup'}, run ${run.runId}), within recovery.cooldown; ` +
        'a second restore would lose everything written since. If that is what you want, start it again with overrideCooldown: true (CLI: --override-cooldown)',
      'RecentlyRecovered',
    );
  }
}
