import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { readManifest } from '../../src/backup/catalog';
import { signManifest } from '../../src/backup/manifest-auth';
import { KubeApiError, type KubeClient } from '../../src/kube/client';
import { waitFor } from '../../src/devserver/processes';
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

/**
 * Backup `a` made to hold backup `b`'s snapshot, as an insider with the encryption key could (or an operator
 * "repairing" a backup whose snapshot object was lost): `b`'s stored bytes (a whole, valid, encrypted snapshot of the
 * same cluster) are written over `a`'s snapshot object and `a`'s manifest is rewritten to describe them (checksums,
 * sizes, encryption header) and re-signed with the right key. Every check before the restore passes: the manifest's
 * tag, the bucket's checksum, the SHA-256 on the node, etcd's own hash. Only `a`'s recorded counts per resource still
 * describe `a`. Returns a function that puts `a` back as it was.
 */
export async function replaceSnapshotKeepingCounts(
  s3: S3Client,
  bucket: string,
  a: { manifestKey: string; snapshotKey: string },
  b: { manifestKey: string; snapshotKey: string },
  key: Buffer,
  keyId: string,
): Promise<() => Promise<void>> {
  const get = async (k: string) =>
    Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: k }))).Body!.transformToByteArray());
  const originalSnapshot = await get(a.snapshotKey);
  const originalManifest = await get(a.manifestKey);
  const bytes = await get(b.snapshotKey);
  const manifestA = await readManifest(s3, bucket, a.manifestKey);
  const manifestB = await readManifest(s3, bucket, b.manifestKey);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: a.snapshotKey, Body: bytes, ChecksumAlgorithm: 'SHA256' }));
  const forged = {
    ...manifestA,
    snapshot: { ...manifestB.snapshot, key: a.snapshotKey, s3Checksum: createHash('sha256').update(bytes).digest('base64') },
  };
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: a.manifestKey, Body: JSON.stringify(signManifest(forged, key, keyId)) }));
  return async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: a.snapshotKey, Body: originalSnapshot, ChecksumAlgorithm: 'CRC32' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: a.manifestKey, Body: originalManifest }));
  };
}

/**
 * Creates a ConfigMap in "default" once the API takes writes: just after a restore or rollback restarted it, it can
 * answer reads and still refuse writes (403 until its authorizer has synced). Already there (a retried create whose
 * answer was lost) is fine.
 */
export function createConfigMapWhenWritable(api: KubeClient, name: string): Promise<true> {
  return waitFor(
    `configmap ${name} created`,
    () =>
      api.create('/api/v1/namespaces/default/configmaps', { metadata: { name } }).then(
        () => true as const,
        (err: unknown) => {
          if (err instanceof KubeApiError && err.status === 409) return true as const;
          throw err;
        },
      ),
    180_000,
    1000,
  );
}
