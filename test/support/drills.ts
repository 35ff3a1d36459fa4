import type { Client } from '@temporalio/client';
import type { KubeClient } from '../../src/kube/client';
import { drillRestore } from '../../workflows';
import type { DrillRestoreInput } from '../../workflows/drill-input';

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
