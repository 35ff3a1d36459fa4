import { randomBytes } from 'node:crypto';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandboxCluster } from '../sandbox/cluster';
import { fillEtcd } from '../sandbox/fill';
import { etcdctlArgs } from '../sandbox/control-plane';
import { awsCli, benchEnv, formatCpu, startWorkerProcess, timed } from './env';
import { backupCluster } from '../workflows';

/**
 * Backup benchmark: in one run, against the same etcd, (a) the plain script users run today — `etcdctl snapshot save`
 * and an upload with the AWS CLI — and (b) this engine's backup workflow with encryption off and on (and gzip), at
 * ~100 MiB and ~1 GiB. Prints wall times, the worker's peak RSS, and the ratios b/a.
 */
async function main(): Promise<void> {
  const env = await benchEnv();
  const cluster = await createSandboxCluster({
    name: 'bench',
    etcdLine: '3.6',
    withApiserver: false,
    storage: { bucket: 'bench', prefix: 'x', region: 'us-east-1', forcePathStyle: true },
    dir: join(env.dir, 'cluster'),
  });
  const keyPath = join(env.dir, 'bench.key');
  await writeFile(keyPath, randomBytes(32).toString('base64'));
  const rows: string[] = [];
  const figures: Record<
    string,
    {
      plain: number;
      engine: number;
      encrypted: number;
      gzipEncrypted: number;
      rss: number;
      rssEncrypted: number;
      direct: number;
      directEncrypted: number;
      rssDirect: number;
      cpu: Record<string, number>;
    }
  > = {};
  // The worker's copy of an etcd client certificate, for direct mode.
  const etcdCerts = { ca: join(env.dir, 'etcd-ca.crt'), cert: join(env.dir, 'etcd-client.crt'), key: join(env.dir, 'etcd-client.key') };
  await copyFile(cluster.controlPlane.path('/etc/kubernetes/pki/etcd/ca.crt'), etcdCerts.ca);
  await copyFile(cluster.controlPlane.path('/etc/kubernetes/pki/etcd/healthcheck-client.crt'), etcdCerts.cert);
  await copyFile(cluster.controlPlane.path('/etc/kubernetes/pki/etcd/healthcheck-client.key'), etcdCerts.key);
  let filled = 0;
  try {
    // LIFEBOAT_BENCH_QUICK=1: the 100 MiB round only, for a quick look (the summary line needs both).
    const sizes = process.env.LIFEBOAT_BENCH_QUICK
      ? ([['100MiB', 100]] as const)
      : ([
          ['100MiB', 100],
          ['1GiB', 1024],
        ] as const);
    for (const [label, mib] of sizes) {
      await fillEtcd(cluster, mib - filled, 1024 * 1024, { prefix: '/bench/', from: filled + 1 });
      filled = mib;
      // (a) the plain script
      const plain = await timed(async () => {
        await cluster.controlPlane.exec(['etcdctl', ...etcdctlArgs(), 'snapshot', 'save', '/var/lib/plain.db']);
        await awsCli(env, [
          's3',
          'cp',
          '--only-show-errors',
          cluster.controlPlane.path('/var/lib/plain.db'),
          `s3://bench/plain/${label}.db`,
        ]);
      });
      await cluster.controlPlane.exec(['rm', '-f', '/var/lib/plain.db']);
      // (b) the engine, one worker process per variant so each peak RSS is its own
      const variant = async (name: string, backup: Record<string, unknown>, clusterExtra: Record<string, unknown> = {}) => {
        const tq = `${label}-${name}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
        const w = await startWorkerProcess(env, cluster, backup, keyPath, tq, clusterExtra);
        try {
          const r = await timed(() =>
            env.client.workflow.execute(backupCluster, { taskQueue: tq, workflowId: `bench-${tq}`, args: [{ cluster: 'bench' }] }),
          );
          const rss = await w.peakRssMiB();
          rows.push(
            `${label.padEnd(7)} ${name.padEnd(18)} ${r.seconds.toFixed(1).padStart(7)} s  ratio ${(r.seconds / plain.seconds).toFixed(2)}  peak RSS ${rss.toFixed(0)} MiB  stored ${(r.value.storedBytes / 1048576).toFixed(0)} MiB  steps: ${r.value.steps.map((s) => `${s.step} ${(s.ms / 1000).toFixed(1)}`).join(', ')}`,
          );
          rows.push(`${''.padEnd(27)} ${formatCpu(r)}`);
          return { seconds: r.seconds, rss, cpuSeconds: r.cpuSeconds };
        } finally {
          await w.proc.stop();
        }
      };
      rows.push(
        `${label.padEnd(7)} ${'plain script'.padEnd(18)} ${plain.seconds.toFixed(1).padStart(7)} s  (etcdctl snapshot save + aws s3 cp)`,
      );
      rows.push(`${''.padEnd(27)} ${formatCpu(plain)}`);
      const off = await variant('engine', { allowUnencrypted: true, compression: 'none' });
      const on = await variant('engine+encrypt', { encryptionKey: 'bench', compression: 'none' });
      const gz = await variant('engine+gzip+encrypt', { encryptionKey: 'bench', compression: 'gzip' });
      // Direct mode: the worker takes the snapshot itself (no SSH in the data path), like the plain script's etcdctl.
      const direct = {
        etcd: {
          ...cluster.config.etcd,
          direct: {
            endpoints: [`https://${cluster.controlPlane.ip}:2379`],
            caFile: etcdCerts.ca,
            certFile: etcdCerts.cert,
            keyFile: etcdCerts.key,
            etcdctl: join(cluster.binaries.etcd['3.6'], 'etcdctl'),
            etcdutl: join(cluster.binaries.etcd['3.6'], 'etcdutl'),
            workDir: join(env.dir, 'direct-work'),
          },
        },
      };
      const dOff = await variant('direct', { allowUnencrypted: true, compression: 'none' }, direct);
      const dOn = await variant('direct+encrypt', { encryptionKey: 'bench', compression: 'none' }, direct);
      figures[label] = {
        plain: plain.seconds,
        engine: off.seconds,
        encrypted: on.seconds,
        gzipEncrypted: gz.seconds,
        rss: off.rss,
        rssEncrypted: on.rss,
        direct: dOff.seconds,
        directEncrypted: dOn.seconds,
        rssDirect: Math.max(dOff.rss, dOn.rss),
        cpu: {
          plain: plain.cpuSeconds,
          engine: off.cpuSeconds,
          encrypted: on.cpuSeconds,
          direct: dOff.cpuSeconds,
          directEncrypted: dOn.cpuSeconds,
        },
      };
    }
  } finally {
    await cluster.destroy();
    await env.close();
  }
  console.log('\nsize    run                   wall          ratio vs plain');
  for (const r of rows) console.log(r);
  if (!figures['1GiB']) return;
  const big = figures['1GiB'];
  const small = figures['100MiB'];
  const peak = Math.max(big.rss, big.rssEncrypted, small.rss, small.rssEncrypted, big.rssDirect, small.rssDirect);
  // What the machine's cores did: with node, worker, etcd and MinIO on one 2-core machine, SSH mode's extra work
  // (encrypting on the node, decrypting on the worker) shows up here as well as in the wall time.
  const cores = (await import('node:os')).cpus().length;
  console.log(
    `backup (cpu seconds, ${cores} cores shared): ${Object.entries(big.cpu)
      .map(([k, v]) => `${k}=${v.toFixed(1)}`)
      .join(' ')} cpu_ratio=${(big.cpu.engine / big.cpu.plain).toFixed(2)} cpu_ratio_direct=${(big.cpu.direct / big.cpu.plain).toFixed(2)}`,
  );
  // Direct mode on its own line, so the summary line below keeps its format (its ratios are the default SSH mode).
  console.log(
    `backup (direct mode): wall_ratio=${(big.direct / big.plain).toFixed(2)} wall_ratio_encrypted=${(big.directEncrypted / big.plain).toFixed(2)}`,
  );
  console.log(
    `backup: wall_ratio=${(big.engine / big.plain).toFixed(2)} wall_ratio_encrypted=${(big.encrypted / big.plain).toFixed(2)} peak_rss_mib=${peak.toFixed(0)} rss_growth=${(big.rssEncrypted / small.rssEncrypted).toFixed(2)}`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
