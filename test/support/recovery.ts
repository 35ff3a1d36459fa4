import { createHash } from 'node:crypto';
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import type { SandboxNode } from '../../sandbox/node';
import type { RecoverClusterInput } from '../../workflows/recovery-input';
import type { RecoverClusterResult } from '../../workflows/recover-cluster';
import { recoverCluster } from '../../workflows';

export function startRecovery(
  client: Client,
  taskQueue: string,
  input: RecoverClusterInput,
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  return client.workflow.start(recoverCluster, {
    taskQueue,
    workflowId: `recover-${input.cluster}`,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    args: [input],
  });
}

export async function recover(client: Client, taskQueue: string, input: RecoverClusterInput): Promise<RecoverClusterResult> {
  return (await startRecovery(client, taskQueue, input)).result();
}

/**
 * A fingerprint of what a recovery could change on a node: every file under /etc/kubernetes (content), the entries of
 * /var/lib and the identity (inode) of the etcd data dir. etcd's own files change while it runs, so they are
 * represented by the folder's identity, not its bytes.
 */
export async function nodeFingerprint(node: SandboxNode): Promise<string> {
  const files = await node.exec(['bash', '-c', 'cd /etc/kubernetes && find . -type f -print0 | sort -z | xargs -0 sha256sum']);
  const varLib = await node.exec(['bash', '-c', 'ls -A /var/lib; ls -A /var/lib/lifeboat 2>/dev/null; stat -c %i /var/lib/etcd']);
  return createHash('sha256').update(files).update(varLib).digest('hex');
}
