import { ApplicationFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { recoveryWorkflowId } from '../../workflows/run-ids';

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
  const since = new Date(Date.now() - cooldownMs);
  const workflowId = recoveryWorkflowId(cluster);
  // The newest run by describe (consistent: a restore that ended a moment ago counts at once), older ones from the
  // list (visibility lags a little, and a dry run after a restore must not hide it).
  const runs: { runId: string; closeTime?: Date }[] = [];
  const latest = await client.workflow
    .getHandle(workflowId)
    .describe()
    .catch(() => undefined);
  if (latest?.status.name === 'COMPLETED' && latest.closeTime && latest.closeTime > since)
    runs.push({ runId: latest.runId, closeTime: latest.closeTime });
  const query = `WorkflowId = '${workflowId}' AND ExecutionStatus = 'Completed' AND CloseTime > '${since.toISOString()}'`;
  for await (const run of client.workflow.list({ query })) if (!runs.some((r) => r.runId === run.runId)) runs.push(run);
  for (const run of runs) {
    const result = (await client.workflow
      .getHandle(workflowId, run.runId)
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
