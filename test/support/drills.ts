import type { S3Client } from '@aws-sdk/client-s3';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { KubeClient } from '../../src/kube/client';
import { drillRestore } from '../../workflows';
import { clusterBackupPrefix } from '../../src/backup/object-keys';
import { trustRulesFor } from '../../src/backup/trusted-catalog';
import { readDrillReport, type DrillReport } from '../../src/drill/report';
import type { RunningWorker } from './worker';
import type { DrillRestoreInput } from '../../workflows/drill-input';
import { serverBinaries, type EtcdLine } from '../../src/devserver/binaries';

/**
 * A test worker's `drill` block: a scratch folder of its own, etcd's tools of the given lines, kube-apiserver 1.34 to
 * count through (restored on the worker, as a real worker's drill runs).
 */
export async function drillConfigFor(name: string, lines: EtcdLine[], startTimeout = '60s') {
  const bins = await serverBinaries();
  return {
    scratchDir: await mkdtemp(join(tmpdir(), `lifeboat-${name}-drill-`)),
    etcd: Object.fromEntries(lines.map((line) => [line, bins.etcd[line]])) as Partial<Record<EtcdLine, string>>,
    kubeApiserver: { '1.34': bins.kubeApiserver },
    startTimeout,
  };
}

/** A drill run to its end (its result, or its failure thrown). */
export const drill = (client: Client, taskQueue: string, input: DrillRestoreInput) =>
  client.workflow.execute(drillRestore, { taskQueue, workflowId: `drill-${input.cluster}-${Date.now()}`, args: [input] });

/** What a drill reads back: `configMaps` ConfigMaps with data, and a Secret (decoded through the API, encryption at rest or not). */
export async function seedObjects(api: KubeClient, configMaps: number): Promise<void> {
  for (let i = 0; i < configMaps; i++)
    await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: `cm-${i}` }, data: { i: `${i}` } });
  await api.create('/api/v1/namespaces/default/secrets', {
    metadata: { name: 'db-password' },
    data: { password: Buffer.from('hunter2').toString('base64') },
  });
}

/** A backup's drill report as the product reads it (signed, beside its backup), for the worker's cluster that holds it. */
export async function drillReportOf(s3: S3Client, worker: RunningWorker, manifestKey: string): Promise<DrillReport | undefined> {
  const cluster = worker.config.clusters.find((c) => manifestKey.startsWith(clusterBackupPrefix(c.storage.prefix, c.name)));
  if (!cluster) throw new Error(`${manifestKey} is under no cluster of the worker's config`);
  return readDrillReport(s3, trustRulesFor(worker.config, cluster), manifestKey);
}
