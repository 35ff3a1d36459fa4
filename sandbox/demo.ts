import { WorkflowIdConflictPolicy } from '@temporalio/client';
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
import { localDevServerTarget } from '../src/temporal/connection';
import { printReport } from '../src/cli/recovery-report';
import { backupCluster, recoverCluster } from '../workflows';
import { s3ClientFor } from '../src/storage/s3-client';
import { chainsFolder, lastRevisionOfKey } from '../src/continuous/segment';
import { listObjects } from '../src/backup/catalog';
import { compareRevisions } from '../src/etcd/revision';

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
    // Continuous backups on: etcd's changes ship every 2 s, so the disaster below loses seconds, not the backup interval.
    // A restore to a point rebuilds it on the worker with these etcd tools (drill.etcd).
    drill: { scratchDir: join(dir, 'scratch'), etcd: { '3.6': bins.etcd['3.6'] } },
    clusters: [
      {
        ...cluster.config,
        backup: { ...cluster.config.backup, encryptionKey: 'demo', continuous: { segmentSeconds: 2 } },
        recovery: { approval: 'auto' },
      },
    ],
  };
  await mkdir(join(dir, 'config'), { recursive: true });
  await writeFile(join(dir, 'config/config.yaml'), stringify(configObject));
  const config = parseConfig(configObject, 'demo config');
  console.log(`   node cp1 at ${cluster.controlPlane.ip}, API ${cluster.apiServer}; config written to ${join(dir, 'config/config.yaml')}`);

  Runtime.install({ logger: new DefaultLogger('WARN') });
  // The worker's client (the engine's connection module and data converter) starts the demo's runs too.
  const { worker, close, client } = await createWorker({
    config,
    logger: pino({ level: 'warn' }),
    target: localDevServerTarget(temporal.address, config.temporal.taskQueue),
  });
  const running = worker.run();
  await syncBackupSchedules(client, config);
  const s3 = await s3ClientFor(config.clusters[0].storage);
  const api = new KubeClient(
    credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
  );
  const cms = async () =>
    (await api.list('/api/v1/namespaces/default/configmaps'))
      .map((c) => c.metadata.name)
      .filter((n) => n.startsWith('app-'))
      .sort();

  try {
    say('creating objects, then taking a backup (capture-demo, the continuous backup, runs from the start)');
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

    say('creating more objects after the backup (a full backup alone would lose them: continuous backups keep them)');
    const after = await api.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'app-after-backup' } });
    const wanted = String((after as { metadata: { resourceVersion: string } }).metadata.resourceVersion);
    console.log(`   configmaps now: ${(await cms()).join(', ')} (app-after-backup at etcd revision ${wanted})`);
    // capture-demo (started by the schedule sync above, as `lifeboat schedule sync` does) ships it in a segment.
    const writtenAt = Date.now();
    const segment = await waitFor(
      'app-after-backup to be in a segment in the bucket',
      async () => {
        const listed = await listObjects(s3, storage.bucket, chainsFolder(storage.prefix, 'demo'));
        return listed.map((o) => o.key).find((k) => compareRevisions(lastRevisionOfKey(k) ?? '0', wanted) >= 0);
      },
      60_000,
      200,
    );
    console.log(`   durable in the bucket ${((Date.now() - writtenAt) / 1000).toFixed(1)} s after it was written: ${segment}`);

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

    say('recovering to the newest durable point: workflow recover-demo (at: newest, approval: auto)');
    const handle = await client.workflow.start(recoverCluster, {
      taskQueue: 'lifeboat',
      workflowId: 'recover-demo',
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      args: [{ cluster: 'demo', at: 'newest', approval: 'auto', reason: 'demo: control plane destroyed' }],
    });
    const result = await handle.result();
    const recoveredAt = Date.now();
    printReport(result);
    const back = await cms();
    console.log(`\n   configmaps after recovery: ${back.join(', ')}`);
    console.log(
      `   came back: ${['app-config', 'app-feature-flags', 'app-after-backup'].filter((n) => back.includes(n)).join(', ')}; lost: ${back.includes('app-after-backup') ? 'none' : 'app-after-backup'}`,
    );
    const pointAt = result.point ? Date.parse(result.point.time) : backupTakenAt;
    console.log(
      `   RPO this run: ${((disasterAt - pointAt) / 1000).toFixed(1)} s (newest durable point to disaster; the full backup alone: ${((disasterAt - backupTakenAt) / 1000).toFixed(1)} s); RTO: ${((recoveredAt - disasterAt) / 1000).toFixed(1)} s from disaster to verified API`,
    );
    console.log('   To land on a chosen moment instead: lifeboat restore demo --at 2026-12-03T09:15:00Z (or an etcd revision)');
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
    s3.destroy();
    await cluster.destroy();
    await minio.stop();
    await temporal.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
