import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KubeClient } from '../src/kube/client';
import { credentialsFromKubeconfig } from '../src/kube/kubeconfig';
import { createSandboxCluster } from '../sandbox/cluster';
import { fillEtcd } from '../sandbox/fill';
import { freePort, startProcess, waitFor } from '../src/devserver/processes';
import { awsCli, benchEnv, run, startWorkerProcess, timed } from './env';
import { backupCluster, drillRestore } from '../workflows';

/** `sync`, saying how much was waiting to be written back (the `Dirty` line of /proc/meminfo). */
async function settleDisk(before: string): Promise<void> {
  const dirty = /Dirty:\s+(\d+) kB/.exec(await readFile('/proc/meminfo', 'utf8'))?.[1];
  const t = await timed(() => run('sync', []));
  console.log(`before ${before}: sync wrote back ${(Number(dirty) / 1024).toFixed(0)} MiB in ${t.seconds.toFixed(1)} s`);
}

/**
 * Drill benchmark: a backup of ~1 GiB (100 MiB with LIFEBOAT_BENCH_QUICK=1), stored plain so a script can use the
 * very object, drilled by the engine (drillRestore in the worker's own process) and by hand in one script: download
 * (AWS CLI), `etcdutl snapshot restore`, start etcd, start kube-apiserver with the node's PKI, wait for /readyz, count
 * keys. Prints both, the ratio and the worker's peak RSS.
 */
async function main(): Promise<void> {
  const quick = !!process.env.LIFEBOAT_BENCH_QUICK;
  const env = await benchEnv();
  const cluster = await createSandboxCluster({
    name: 'drb',
    etcdLine: '3.6',
    withApiserver: true,
    storage: { bucket: 'bench', prefix: 'x', region: 'us-east-1', forcePathStyle: true },
    dir: join(env.dir, 'cluster'),
  });
  const node = cluster.controlPlane;
  const keyPath = join(env.dir, 'bench.key');
  await writeFile(keyPath, randomBytes(32).toString('base64'));
  const scratch = join(env.dir, 'drill-scratch');
  const etcdDir = env.bins.etcd['3.6'];
  const tq = 'drb';
  const w = await startWorkerProcess(
    env,
    cluster,
    { allowUnencrypted: true, compression: 'none' },
    keyPath,
    tq,
    {},
    {
      config: {
        drill: { scratchDir: scratch, etcd: { '3.6': etcdDir }, kubeApiserver: { '1.34': env.bins.kubeApiserver }, startTimeout: '5m' },
      },
    },
  );
  try {
    await fillEtcd(cluster, quick ? 100 : 1000, 1024 * 1024, { prefix: '/bench/' });
    const backup = await env.client.workflow.execute(backupCluster, {
      taskQueue: tq,
      workflowId: 'bench-drill-backup',
      args: [{ cluster: 'drb' }],
    });
    console.log(`backup ${backup.snapshotKey}: ${(backup.plainBytes / 1048576).toFixed(0)} MiB, revision ${backup.revision}`);

    // By hand: the same steps as plain commands on the worker's machine.
    const dir = join(env.dir, 'plain');
    await mkdir(dir, { recursive: true });
    const steps: [string, number][] = [];
    const step = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
      const t = await timed(body);
      steps.push([name, t.seconds]);
      return t.value;
    };
    const [clientPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const peer = `http://127.0.0.1:${peerPort}`;
    const client = `http://127.0.0.1:${clientPort}`;
    const member = ['--name', 'plain', '--initial-cluster', `plain=${peer}`, '--initial-advertise-peer-urls', peer];
    const pki = node.path('/etc/kubernetes/pki');
    const procs: { stop(): Promise<void> }[] = [];
    // Each side starts with no dirty pages to flush: the backup before the script, and the script before the drill,
    // each leave gigabytes to write back, and the kernel throttles whoever writes next while they go out.
    await settleDisk('the script');
    const plain = await timed(async () => {
      await step('download', () =>
        awsCli(env, ['s3', 'cp', '--only-show-errors', `s3://bench/${backup.snapshotKey}`, join(dir, 'snapshot.db')]),
      );
      await step('restore', () =>
        run(join(etcdDir, 'etcdutl'), ['snapshot', 'restore', join(dir, 'snapshot.db'), '--data-dir', join(dir, 'data'), ...member]),
      );
      await step('etcd', async () => {
        procs.push(
          startProcess(
            'etcd',
            join(etcdDir, 'etcd'),
            [
              '--data-dir',
              join(dir, 'data'),
              ...member,
              '--listen-client-urls',
              client,
              '--advertise-client-urls',
              client,
              '--listen-peer-urls',
              peer,
              '--unsafe-no-fsync',
            ],
            {
              logFile: join(dir, 'etcd.log'),
            },
          ),
        );
        await waitFor(
          'etcd',
          () =>
            fetch(`${client}/health`).then(
              (r) => r.ok,
              () => false,
            ),
          300_000,
          100,
        );
      });
      await step('kube-apiserver', async () => {
        procs.push(
          startProcess(
            'kube-apiserver',
            env.bins.kubeApiserver,
            [
              '--bind-address=127.0.0.1',
              `--secure-port=${apiPort}`,
              `--etcd-servers=${client}`,
              `--client-ca-file=${pki}/ca.crt`,
              `--tls-cert-file=${pki}/apiserver.crt`,
              `--tls-private-key-file=${pki}/apiserver.key`,
              `--service-account-key-file=${pki}/sa.pub`,
              `--service-account-signing-key-file=${pki}/sa.key`,
              '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
              '--authorization-mode=AlwaysAllow',
              `--cert-dir=${dir}/certs`,
            ],
            { logFile: join(dir, 'kube-apiserver.log') },
          ),
        );
        const api = new KubeClient({
          ...credentialsFromKubeconfig(await readFile(node.path('/etc/kubernetes/admin.conf'), 'utf8'), `https://127.0.0.1:${apiPort}`),
          serverName: 'kubernetes',
        });
        await waitFor('readyz', () => api.ready(), 300_000, 200);
      });
      await step('count', () =>
        run('bash', ['-c', `${join(etcdDir, 'etcdctl')} --endpoints=${client} get /registry/ --prefix --keys-only | grep -c .`]),
      );
    });
    for (const p of procs) await p.stop();

    await settleDisk('the drill');
    // The peak of the drill alone: the same worker took the 1 GiB backup before it.
    await w.resetPeakRss();
    const rssBefore = await w.peakRssMiB();
    const drilled = await timed(() =>
      env.client.workflow.execute(drillRestore, {
        taskQueue: tq,
        workflowId: 'bench-drill',
        args: [{ cluster: 'drb', snapshot: backup.snapshotKey }],
      }),
    );
    const rss = await w.peakRssMiB();
    console.log(`worker RSS before the drill: ${rssBefore.toFixed(0)} MiB (after the backup), peak during it: ${rss.toFixed(0)} MiB`);
    console.log('\nby hand (one script):');
    for (const [name, s] of steps) console.log(`  ${name.padEnd(16)} ${s.toFixed(1).padStart(6)} s`);
    console.log(`  ${'total'.padEnd(16)} ${plain.seconds.toFixed(1).padStart(6)} s`);
    console.log(`drill workflow: ${drilled.seconds.toFixed(1)} s (${drilled.value.countedThrough}; ${drilled.value.checks.length} checks)`);
    // Its timed checks: where the engine's time went, beside the script's steps.
    for (const c of drilled.value.checks.filter((x) => /\(\d+\.\d s\)$/.test(x)))
      console.log(`  ${c.slice(0, 60)}... ${/\((\d+\.\d s)\)$/.exec(c)![1]}`);
    console.log(
      `drill: drill_s=${drilled.seconds.toFixed(1)} plain_s=${plain.seconds.toFixed(1)} ratio=${(drilled.seconds / plain.seconds).toFixed(2)} peak_rss_mib=${rss.toFixed(0)}`,
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
