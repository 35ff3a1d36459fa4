import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { KubeClient } from '../src/kube/client';
import { credentialsFromKubeconfig } from '../src/kube/kubeconfig';
import { createSandboxCluster } from '../sandbox/cluster';
import { fillEtcd } from '../sandbox/fill';
import { waitFor } from '../src/devserver/processes';
import { awsCli, benchEnv, run, startWorkerProcess, timed } from './env';
import { backupCluster, recoverCluster } from '../workflows';

/**
 * RTO benchmark: on a sandbox with ~200 MiB of etcd data, the kubeadm restore runbook as plain shell commands over
 * SSH (download, stop, restore, swap, restart, wait for /readyz) against this engine's recovery workflow (approval
 * auto), in one run, from the same backup object. Prints both, per-step times and the ratio.
 */
async function main(): Promise<void> {
  const env = await benchEnv();
  const cluster = await createSandboxCluster({
    name: 'rto',
    etcdLine: '3.6',
    withApiserver: true,
    storage: { bucket: 'bench', prefix: 'x', region: 'us-east-1', forcePathStyle: true },
    dir: join(env.dir, 'cluster'),
  });
  const node = cluster.controlPlane;
  const keyPath = join(env.dir, 'bench.key');
  await writeFile(keyPath, randomBytes(32).toString('base64'));
  const api = new KubeClient(credentialsFromKubeconfig(await readFile(node.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer));
  const tq = 'rto';
  const w = await startWorkerProcess(env, cluster, { allowUnencrypted: true, compression: 'none' }, keyPath, tq);
  try {
    await fillEtcd(cluster, 200, 1024 * 1024, { prefix: '/bench/' });
    // One backup, stored plain, so the runbook can download the very same object as a .db file.
    const backup = await env.client.workflow.execute(backupCluster, {
      taskQueue: tq,
      workflowId: 'bench-rto-backup',
      args: [{ cluster: 'rto' }],
    });
    console.log(`backup ${backup.snapshotKey}: ${(backup.plainBytes / 1048576).toFixed(0)} MiB, revision ${backup.revision}`);

    const plainSteps: [string, number][] = [];
    const step = async (name: string, body: () => Promise<unknown>) => plainSteps.push([name, (await timed(body)).seconds]);
    // The runbook's commands go over SSH like an operator's would (OpenSSH, host key pinned); only the download
    // writes straight into the node's disk, because the sandbox's MinIO is on the host's loopback.
    const knownHosts = join(env.dir, 'known_hosts');
    await writeFile(knownHosts, `${node.ip} ${node.hostKey}\n`);
    const ssh = (script: string) =>
      run(
        'ssh',
        [
          '-i',
          cluster.sshKeyFile,
          '-o',
          `UserKnownHostsFile=${knownHosts}`,
          '-o',
          'StrictHostKeyChecking=yes',
          '-o',
          'BatchMode=yes',
          `root@${node.ip}`,
          script,
        ],
        { maxBuffer: 64 * 1024 * 1024 },
      );
    const etcdFlags = `--name=cp1 --initial-cluster=cp1=https://${node.ip}:2380 --initial-advertise-peer-urls=https://${node.ip}:2380 --initial-cluster-token=etcd-cluster`;
    const plain = await timed(async () => {
      await step('download', () =>
        awsCli(env, ['s3', 'cp', '--only-show-errors', `s3://bench/${backup.snapshotKey}`, node.path('/var/lib/plain-snapshot.db')]),
      );
      await step('stop', () =>
        ssh(
          "mkdir -p /var/lib/plain-aside && mv /etc/kubernetes/manifests/*.yaml /var/lib/plain-aside/ && while ss -Htln | awk '{print $4}' | grep -qE ':(2379|6443)$'; do sleep 0.2; done",
        ),
      );
      await step('restore', () =>
        ssh(
          `etcdutl snapshot restore /var/lib/plain-snapshot.db --data-dir=/var/lib/etcd.plain-restore ${etcdFlags} --bump-revision=1000000000 --mark-compacted`,
        ),
      );
      await step('swap', () => ssh('mv /var/lib/etcd /var/lib/etcd.plain-old && mv /var/lib/etcd.plain-restore /var/lib/etcd'));
      await step('restart + readyz', async () => {
        await ssh('mv /var/lib/plain-aside/*.yaml /etc/kubernetes/manifests/');
        await waitFor('readyz', () => api.ready(), 180_000, 200);
      });
    });

    const workflow = await timed(async () => {
      const handle = await env.client.workflow.start(recoverCluster, {
        taskQueue: tq,
        workflowId: 'recover-rto',
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        args: [{ cluster: 'rto', snapshot: backup.snapshotKey, approval: 'auto', controlPlaneTimeoutSeconds: 300 }],
      });
      return await handle.result();
    });
    console.log('\nplain runbook (shell commands over SSH):');
    for (const [name, s] of plainSteps) console.log(`  ${name.padEnd(20)} ${s.toFixed(1).padStart(6)} s`);
    console.log(`  ${'total'.padEnd(20)} ${plain.seconds.toFixed(1).padStart(6)} s`);
    console.log('recovery workflow:');
    for (const s of workflow.value.steps) {
      const secs = s.startedAt && s.endedAt ? (Date.parse(s.endedAt) - Date.parse(s.startedAt)) / 1000 : 0;
      console.log(`  ${s.step.padEnd(20)} ${secs.toFixed(1).padStart(6)} s  ${s.status}`);
    }
    console.log(`  ${'total'.padEnd(20)} ${workflow.seconds.toFixed(1).padStart(6)} s`);
    console.log(
      `recovery: workflow_s=${workflow.seconds.toFixed(1)} plain_s=${plain.seconds.toFixed(1)} ratio=${(workflow.seconds / plain.seconds).toFixed(2)}`,
    );
  } finally {
    await w.proc.stop();
    await cluster.destroy();
    await env.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
