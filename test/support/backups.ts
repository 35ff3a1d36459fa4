import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { ClusterConfig } from '../../src/config/schema';
import { clusterSchema } from '../../src/config/schema';
import type { SandboxCluster } from '../../sandbox/cluster';
import type { BackupClusterResult } from '../../workflows/backup-cluster';
import { backupCluster } from '../../workflows';

/** A fresh 32-byte key in a file, referenced from config as users do. */
export async function keyFile(): Promise<{ path: string; key: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-key-'));
  const key = randomBytes(32);
  const path = join(dir, 'backup.key');
  await writeFile(path, key.toString('base64') + '\n', { mode: 0o600 });
  return { path, key };
}

/** The sandbox cluster's config with backup settings applied. */
export function withBackup(cluster: SandboxCluster, backup: Record<string, unknown>, storage?: ClusterConfig['storage']): ClusterConfig {
  return clusterSchema.parse({
    ...cluster.config,
    storage: storage ?? cluster.config.storage,
    backup: { ...cluster.config.backup, ...backup },
  });
}

/**
 * Direct mode against a sandbox cluster, as an operator sets it up next to the worker: its own copy of etcd's
 * healthcheck client certificate, the etcdctl/etcdutl of `line`, and a work dir of its own.
 */
export async function directModeOf(cluster: SandboxCluster, line: '3.5' | '3.6'): Promise<NonNullable<ClusterConfig['etcd']['direct']>> {
  const certs = await mkdtemp(join(tmpdir(), 'lifeboat-direct-certs-'));
  for (const f of ['ca.crt', 'healthcheck-client.crt', 'healthcheck-client.key'])
    await copyFile(cluster.controlPlane.path(`/etc/kubernetes/pki/etcd/${f}`), join(certs, f));
  const bin = cluster.binaries.etcd[line];
  return {
    endpoints: [`https://${cluster.controlPlane.ip}:2379`],
    caFile: join(certs, 'ca.crt'),
    certFile: join(certs, 'healthcheck-client.crt'),
    keyFile: join(certs, 'healthcheck-client.key'),
    etcdctl: join(bin, 'etcdctl'),
    etcdutl: join(bin, 'etcdutl'),
    workDir: await mkdtemp(join(tmpdir(), 'lifeboat-direct-work-')),
  };
}

export async function runBackup(
  client: Client,
  taskQueue: string,
  cluster: string,
  workflowId = `backup-${cluster}-${Date.now()}`,
): Promise<BackupClusterResult> {
  return client.workflow.execute(backupCluster, { taskQueue, workflowId, args: [{ cluster }] });
}
