import { Client, Connection, WorkflowIdConflictPolicy } from '@temporalio/client';
import { Runtime, DefaultLogger } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load';
import { startTemporalDevServer } from '../src/devserver/temporal';
import { KubeClient } from '../src/kube/client';
import { credentialsFromKubeconfig } from '../src/kube/kubeconfig';
import { requireBinary, serverBinaries } from '../src/devserver/binaries';
import { createSandboxCluster } from './cluster';
import { etcdctlArgs } from './control-plane';
import { startMinio } from './minio';
import { freePort, waitFor } from '../src/devserver/processes';
import { syncBackupSchedules } from '../src/schedules/backup-schedules';
import { createWorker } from '../src/temporal/worker';
import { printReport } from '../src/cli/recovery-report';
import { backupCluster, recoverCluster } from '../workflows';

const say = (text: string) => console.log(`\n== ${text}`);

/**
 * `npm run demo`: the whole story on one machine with nothing configured. A sandbox cluster (etcd + kube-apiserver
 * in a network namespace, reached over SSH), MinIO and the Temporal dev server with its UI; objects are created, a
 * backup taken, more objects created, the control plane destroyed (processes killed, etcd data wiped), and the
 * recovery workflow brings it back. Needs root (network namespaces), like the tests.
 */
async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-demo-'));
  const bins = await serverBinaries();
  say('starting Temporal (dev server with UI) and MinIO');
  const port = Number(process.env.LIFEBOAT_DEV_PORT ?? (await freePort()));
  const uiPort = Number(process.env.LIFEBOAT_DEV_UI_PORT ?? 8233);
  const temporal = await startTemporalDevServer({
    binary: await requireBinary(bins.temporal, 'temporal CLI'),
    port,
    uiPort,
    logFile: join(dir, 'temporal.log'),
    startTimeoutMs: 120_000,
  });
  const minio = await startMinio(await requireBinary(bins.minio, 'MinIO'), join(dir, 'minio'));
  await minio.createBucket('etcd-backups');
  console.log(`   Temporal UI: ${temporal.uiUrl}   MinIO console: ${minio.consoleUrl}`);

  say('bringing up a sandbox control plane (etcd 3.6 + kube-apiserver 1.34 on node cp1, over SSH)');
  process.env.LIFEBOAT_DEMO_S3_KEY = minio.accessKeyId;
  process.env.LIFEBOAT_DEMO_S3_SECRET = minio.secretAccessKey;
  const storage = {
    bucket: 'etcd-backups',
    prefix: 'lifeboat',
    region: minio.region,
    endpoint: minio.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: { env: 'LIFEBOAT_DEMO_S3_KEY' }, secretAccessKey: { env: 'LIFEBOAT_DEMO_S3_SECRET' } },
  };
  const cluster = await createSandboxCluster({ name: 'demo', etcdLine: '3.6', withApiserver: true, storage, dir: join(dir, 'cluster') });
  const keyPath = join(dir, 'backup.key');
  await writeFile(keyPath, randomBytes(32).toString('base64'), { mode: 0o600 });
  const configObject = {
    temporal: { address: temporal.address, taskQueue: 'lifeboat' },
    encryptionKeys: { demo: { file: keyPath } },
    clusters: [{ ...cluster.config, backup: { ...cluster.config.backup, encryptionKey: 'demo' }, recovery: { approval: 'auto' } }],
  };
  await mkdir(join(dir, 'config'), { recursive: true });
  await writeFile(join(dir, 'config/config.yaml'), stringify(configObject));
  const config = parseConfig(configObject, 'demo config');
  console.log(`   node cp1 at ${cluster.controlPlane.ip}, API ${cluster.apiServer}; config written to ${join(dir, 'config/config.yaml')}`);

  Runtime.install({ logger: new DefaultLogger('WARN') });
  const { worker, close } = await createWorker({ config, logger: pino({ level: 'warn' }) });
  const running = worker.run();
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection });
  await syncBackupSchedules(client, config);
  const api = new KubeClient(
    credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
  );
  const cms = async () =>
    (await api.list('/api/v1/namespaces/default/configmaps'))
      .map((c) => c.metadata.name)
      .filter((n) => n.startsWith('app-'))
      .sort();

  try {
    say('creating objects, then taking a backup');
    for (const name of ['app-config', 'app-feature-flags'])
      await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name }, data: { created: new Date().toISOString() } });
    await api.create('/api/v1/namespaces', { metadata: { name: 'payments' } });
    const backup = await client.workflow.execute(backupCluster, {
      taskQueue: 'lifeboat',
      workflowId: `backup-demo-${Date.now()}`,
      args: [{ cluster: 'demo', reason: 'demo' }],
    });
    console.log(
      `   backup ${backup.snapshotKey}: revision ${backup.revision}, ${backup.totalKeys} keys, ${backup.steps.map((s) => `${s.step} ${(s.ms / 1000).toFixed(1)}s`).join(', ')}`,
    );
    const backupTakenAt = Date.parse(backup.created);

    say('creating more objects after the backup (these will be lost: that is the RPO)');
    await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'app-after-backup' } });
    console.log(`   configmaps now: ${(await cms()).join(', ')}`);

    say("disaster: killing the control plane and wiping etcd's data");
    const pods = await cluster.controlPlane.pods();
    await cluster.controlPlane.exec([
      'bash',
      '-c',
      `rm -rf /var/lib/etcd/member; kill -9 ${pods
        .flatMap((p) => p.containers.map((c) => c.pid))
        .filter(Boolean)
        .join(' ')} 2>/dev/null || true`,
    ]);
    const disasterAt = Date.now();
    await waitFor(
      'etcd to come back empty',
      async () => {
        await cluster.controlPlane.exec(['etcdctl', ...etcdctlArgs(), 'endpoint', 'health']);
        return true;
      },
      60_000,
    );
    console.log(
      `   etcd restarted with an empty data dir: the cluster has lost its state (configmaps: ${(await cms().catch(() => [])).join(', ') || 'none'})`,
    );

    say('recovering: workflow recover-demo (approval: auto)');
    const handle = await client.workflow.start(recoverCluster, {
      taskQueue: 'lifeboat',
      workflowId: 'recover-demo',
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      args: [{ cluster: 'demo', approval: 'auto', reason: 'demo: control plane destroyed' }],
    });
    const result = await handle.result();
    const recoveredAt = Date.now();
    printReport(result);
    const back = await cms();
    console.log(`\n   configmaps after recovery: ${back.join(', ')}`);
    console.log(
      `   came back: ${['app-config', 'app-feature-flags'].filter((n) => back.includes(n)).join(', ')}; lost (created after the backup): ${back.includes('app-after-backup') ? 'none' : 'app-after-backup'}`,
    );
    console.log(
      `   RPO this run: ${((disasterAt - backupTakenAt) / 1000).toFixed(1)} s (snapshot to disaster: changes in that window are lost); RTO: ${((recoveredAt - disasterAt) / 1000).toFixed(1)} s from disaster to verified API`,
    );
    console.log(`   Temporal UI: ${temporal.uiUrl}/namespaces/default/workflows/recover-demo`);
    if (process.stdout.isTTY && !process.env.LIFEBOAT_DEMO_EXIT) {
      console.log('\n   Everything stays up for you to explore. Ctrl-C to stop and clean up.');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
    }
  } finally {
    worker.shutdown();
    await running;
    await close();
    await connection.close();
    await cluster.destroy();
    await minio.stop();
    await temporal.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
