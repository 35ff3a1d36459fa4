import type { Client } from '@temporalio/client';

/** The capture run of a cluster (capture-<cluster>), as `lifeboat schedule sync` starts it, started and stopped by the bench. */
export async function startCapture(client: Client, taskQueue: string, cluster: string): Promise<void> {
  await client.workflow.start('captureClusterChanges', { taskQueue, workflowId: `capture-${cluster}`, args: [{ cluster }] });
}

/** Cancelled before the recoveries: a restore bumps etcd's revision, which breaks the chain (a new full backup) by design. */
export async function stopCapture(client: Client, cluster: string): Promise<void> {
  const h = client.workflow.getHandle(`capture-${cluster}`);
  await h.cancel();
  await h.result().catch(() => undefined);
}
