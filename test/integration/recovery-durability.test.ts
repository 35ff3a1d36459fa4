import { temporal } from '@temporalio/proto';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Client, Connection, WorkflowIdConflictPolicy } from '@temporalio/client';
import { readFile } from 'node:fs/promises';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { waitFor } from '../../src/devserver/processes';
import { workerProcess } from '../support/worker-process';
import { keyFile, runBackup } from '../support/backups';
import { fillEtcd } from '../../sandbox/fill';
import { minioClient, minioStorage, testBed } from '../support/bed';
import { recoverCluster } from '../../workflows';

describe('a recovery survives its worker being killed (SIGKILL) mid-fetch and mid-wait', () => {
  let cluster: SandboxCluster;
  let admin: KubeClient;

  beforeAll(async () => {
    const s3 = minioClient();
    await s3.send(new CreateBucketCommand({ Bucket: 'durable' })).catch(() => undefined);
    s3.destroy();
    cluster = await createSandboxCluster({ name: 'dur', etcdLine: '3.6', withApiserver: true, storage: minioStorage('durable') });
    admin = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  it('completes after two worker kills, with every side effect done once', async () => {
    const key = await keyFile();
    const { temporalAddress } = testBed();
    const { taskQueue, launch } = await workerProcess(
      'durable',
      { ...cluster.config, backup: { ...cluster.config.backup, encryptionKey: 'k1', compression: 'none' } },
      key.path,
    );
    const connection = await Connection.connect({ address: temporalAddress });
    const client = new Client({ connection });
    let worker = launch();
    try {
      // ~120 MiB of data, so the fetch lasts long enough to be interrupted.
      await fillEtcd(cluster, 120, 1024 * 1024);
      await admin.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'before-backup' } });
      await runBackup(client, taskQueue, 'dur');
      await admin.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'after-backup' } });

      const handle = await client.workflow.start(recoverCluster, {
        taskQueue,
        workflowId: 'recover-dur',
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        args: [{ cluster: 'dur', approval: 'auto', controlPlaneTimeoutSeconds: 180 }],
      });
      const killDuring = async (activity: string) => {
        await waitFor(
          `activity ${activity} to run`,
          async () =>
            (await handle.describe()).raw.pendingActivities?.some(
              (a) =>
                a.activityType?.name === activity && a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
            ),
          120_000,
          50,
        );
        worker.child.kill('SIGKILL');
        await worker.exited;
        worker = launch();
      };
      await killDuring('fetchSnapshot');
      await killDuring('startControlPlane');
      const result = await handle.result();
      expect(result.outcome).toBe('restored');

      const names = (await admin.list('/api/v1/namespaces/default/configmaps')).map((c) => c.metadata.name);
      expect(names).toContain('before-backup');
      expect(names).not.toContain('after-backup');
      // Done once: one kept data dir, no rolled-back or half-restored leftovers, one run folder.
      const varLib = (await cluster.controlPlane.exec(['ls', '-A', '/var/lib'])).split('\n').filter(Boolean).sort();
      expect(varLib.filter((e) => e.startsWith('etcd'))).toEqual(['etcd', expect.stringMatching(/^etcd\.before-/)]);
      expect((await cluster.controlPlane.exec(['ls', '-A', '/var/lib/lifeboat/recoveries'])).trim().split('\n')).toHaveLength(1);
      const history = await handle.fetchHistory();
      const restores = (history.events ?? []).filter(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'restoreEtcdData',
      );
      expect(restores).toHaveLength(1);
      const retried = (history.events ?? []).filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
      expect(retried.length).toBeGreaterThanOrEqual(2); // both killed activities were retried
    } finally {
      await worker.stop();
      await connection.close();
    }
  });
});
