import { WorkflowFailedError } from '@temporalio/client';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { minioStorage } from '../support/bed';
import { startTestWorker, type RunningWorker } from '../support/worker';
import type { ClusterConfig } from '../../src/config/schema';
import { checkCluster } from '../../workflows';

describe('a workflow on the Temporal dev server probes the sandbox node over SSH', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let impostor: ClusterConfig;

  beforeAll(async () => {
    cluster = await createSandboxCluster({
      name: 'smoke-temporal',
      etcdLine: '3.6',
      spareNodes: ['cp2'],
      withApiserver: false,
      storage: minioStorage('smoke-temporal'),
    });
    // The same cluster, but pinned to cp2's host key while connecting to cp1: what a rebuilt or spoofed host looks like.
    const [cp1, cp2] = cluster.config.nodes;
    impostor = { ...cluster.config, name: 'impostor', nodes: [{ ...cp1, hostKey: cp2.hostKey }] };
    worker = await startTestWorker([cluster.config, impostor]);
  });
  afterAll(async () => {
    await worker?.stop();
    await cluster?.destroy();
  });

  it('reports etcd tooling and the static-pod manifests of every node', async () => {
    const result = await worker.client.workflow.execute(checkCluster, {
      taskQueue: worker.taskQueue,
      workflowId: `check-${cluster.name}-${Date.now()}`,
      args: [{ cluster: cluster.name }],
    });
    const cp1 = result.nodes.find((n) => n.node === 'cp1');
    expect(cp1).toMatchObject({
      host: cluster.controlPlane.ip,
      etcdctlVersion: expect.stringMatching(/^3\.6\./),
      etcdutlVersion: expect.stringMatching(/^3\.6\./),
      etcdDataDirExists: true,
    });
    expect(cp1?.manifests).toEqual(['etcd.yaml']);
    const cp2 = result.nodes.find((n) => n.node === 'cp2');
    expect(cp2).toMatchObject({ manifests: [], etcdDataDirExists: false });
  });

  it('refuses a node whose host key does not match the pin, without retrying', async () => {
    const started = Date.now();
    const err = await worker.client.workflow
      .execute(checkCluster, { taskQueue: worker.taskQueue, workflowId: `check-impostor-${Date.now()}`, args: [{ cluster: 'impostor' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause?.cause as { type?: string; message?: string; nonRetryable?: boolean };
    expect(cause.type).toBe('HostKeyMismatch');
    expect(cause.message).toMatch(/host key mismatch for node "cp1"/);
    expect(cause.message).toContain(cluster.controlPlane.ip);
    expect(Date.now() - started).toBeLessThan(20_000); // failed fast: no retry loop
  });

  it('rejects an unknown cluster by name', async () => {
    const err = await worker.client.workflow
      .execute(checkCluster, { taskQueue: worker.taskQueue, workflowId: `check-unknown-${Date.now()}`, args: [{ cluster: 'nope' }] })
      .catch((e: unknown) => e);
    const cause = (err as WorkflowFailedError).cause?.cause as { type?: string; message?: string };
    expect(cause.type).toBe('InvalidConfig');
    expect(cause.message).toMatch(/unknown cluster "nope".*smoke-temporal/);
  });
});
