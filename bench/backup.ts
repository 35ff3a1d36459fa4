import { randomBytes } from 'node:crypto';
import { copyFile, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandboxCluster, type SandboxCluster } from '../sandbox/cluster';
import { fillEtcd } from '../sandbox/fill';
import { fillRealistic } from '../sandbox/fill-realistic';
import { etcdctlArgs } from '../sandbox/control-plane';
import { benchEnv, formatCpu, run, startWorkerProcess, timed, type BenchEnv } from './env';
import { backupCluster } from '../workflows';
import { S3Client } from '@aws-sdk/client-s3';
import { Writable } from 'node:stream';
import { readManifestText } from '../src/backup/catalog';
import { parseManifest } from '../src/backup/manifest';
import { readStoredObject } from '../src/backup/read-object';

/**
 * Backup benchmark: in one run, against the same etcd, (a) the plain script users run today — `etcdctl snapshot save`
 * and an upload of the raw file with the AWS CLI — and (b) this engine's backup workflow in its variants, on two kinds
 * of data: random values (~100 MiB and ~1 GiB of base64 noise, the worst case for compression) and a realistic
 * ~1 GiB of Kubernetes-shaped objects with revisions (sandbox/fill-realistic.ts). Prints wall times, CPU seconds on
 * the control-plane node (etcd excluded), stored bytes, the worker's peak RSS and the ratios b/a, and how well each
 * 1 GiB snapshot compresses with each codec.
 */

interface Variant {
  manifestKey: string;
  seconds: number;
  rss: number;
  cpuSeconds: number;
  nodeCpu: number;
  stored: number;
}

interface Plain {
  seconds: number;
  cpuSeconds: number;
  nodeCpu: number;
  stored: number;
}

/** utime+stime of a process and of the children it has reaped, in seconds. */
async function processTreeCpu(pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}

/**
 * CPU seconds spent on the node over SSH: its sshd reaps every session, and every session its commands (etcdctl,
 * etcdutl, zstd, cat, ...), so the listener's children's time is everything the engine ran there. etcd itself runs
 * under the kubelet, not sshd: excluded, as it is the same for every variant.
 */
async function nodeSshCpu(cluster: SandboxCluster): Promise<number> {
  const pid = Number((await readFile(join(cluster.controlPlane.dir, 'sshd.pid'), 'utf8')).trim());
  return processTreeCpu(pid);
}

/** Runs argv under bash and returns its children's CPU seconds (bash's `times`): the plain script's own cost. */
function withTimes(argv: string[]): string[] {
  return ['bash', '-c', '"$@" >/dev/null; times', 'bash', ...argv];
}
function parseTimes(out: string): number {
  const line = out.trim().split('\n').pop() ?? '';
  const secs = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return secs.reduce((a, b) => a + b, 0);
}

/** Compressed size and CPU seconds of each candidate codec on one snapshot file, on this machine's tools. */
async function compressibility(file: string): Promise<string> {
  const size = (await stat(file)).size;
  const parts: string[] = [];
  for (const [name, argv] of [
    ['zstd-1', ['zstd', '-q', '-c', '-1', file]],
    ['zstd-3', ['zstd', '-q', '-c', '-3', file]],
    ['gzip-1', ['gzip', '-c', '-1', file]],
  ] as const) {
    const { stdout } = await run('bash', ['-c', `"$@" | wc -c; times`, 'bash', ...argv]);
    const [bytes] = stdout.trim().split('\n');
    parts.push(`${name}=${(Number(bytes) / size).toFixed(3)} (${parseTimes(stdout).toFixed(1)} cpu s)`);
  }
  return `${(size / 1048576).toFixed(0)} MiB: ${parts.join(' ')}`;
}

async function main(): Promise<void> {
  const env = await benchEnv();
  const keyPath = join(env.dir, 'bench.key');
  await writeFile(keyPath, randomBytes(32).toString('base64'));
  const rows: string[] = [];
  const notes: string[] = [];
  const clusters: SandboxCluster[] = [];
  const random: Record<string, { plain: Plain; v: Record<string, Variant> }> = {};
  let realistic: { plain: Plain; v: Record<string, Variant> } | undefined;
  try {
    const newCluster = async (name: string) => {
      const c = await createSandboxCluster({
        name,
        etcdLine: '3.6',
        withApiserver: false,
        storage: { bucket: 'bench', prefix: 'x', region: 'us-east-1', forcePathStyle: true },
        dir: join(env.dir, `cluster-${name}`),
      });
      clusters.push(c);
      return c;
    };
    // LIFEBOAT_BENCH_QUICK=1: 100 MiB rounds only, for a quick look (the summary lines need the 1 GiB ones).
    const quick = !!process.env.LIFEBOAT_BENCH_QUICK;
    const cluster = await newCluster('bench');
    let filled = 0;
    for (const [label, mib] of quick
      ? ([['100MiB', 100]] as const)
      : ([
          ['100MiB', 100],
          ['1GiB', 1024],
        ] as const)) {
      await fillEtcd(cluster, mib - filled, 1024 * 1024, { prefix: '/bench/', from: filled + 1 });
      filled = mib;
      const r = await round(env, cluster, keyPath, `random-${label}`, rows, mib >= 1024 || quick ? notes : undefined, [
        ['engine', { allowUnencrypted: true, compression: 'none' }, {}],
        ['engine+encrypt', { encryptionKey: 'bench', compression: 'none' }, {}],
        ['defaults', { encryptionKey: 'bench' }, {}],
        // SSH mode uploading while etcdctl saves (backup.streamWhileSaving): the node's file read as it grows.
        ['streamed', { encryptionKey: 'bench', streamWhileSaving: true }, {}],
        ['direct', { allowUnencrypted: true }, directMode(env, cluster)],
        ['direct+encrypt', { encryptionKey: 'bench' }, directMode(env, cluster)],
      ]);
      random[label] = r;
    }
    {
      const realMiB = quick ? 100 : 1024;
      // Realistic data on a cluster of its own (the random values would otherwise be half of its snapshot).
      await cluster.destroy();
      clusters.splice(clusters.indexOf(cluster), 1);
      const real = await newCluster('real');
      const started = Date.now();
      const filledReal = await fillRealistic(real, realMiB);
      notes.push(
        `realistic fill: ${(filledReal.bytes / 1048576).toFixed(0)} MiB of values in ${filledReal.puts} puts, ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      realistic = await round(env, real, keyPath, `realistic-${quick ? '100MiB' : '1GiB'}`, rows, notes, [
        ['defaults', { encryptionKey: 'bench' }, {}],
        ['streamed', { encryptionKey: 'bench', streamWhileSaving: true }, {}],
        ['gzip+encrypt', { encryptionKey: 'bench', compression: 'gzip' }, {}],
        ['none+encrypt', { encryptionKey: 'bench', compression: 'none' }, {}],
        ['direct+encrypt', { encryptionKey: 'bench' }, directMode(env, real)],
      ]);
      // What a restore's fetch does on the worker (download, decrypt, decode, hash), for the zstd and the plain object.
      const key = Buffer.from(await readFile(keyPath, 'utf8'), 'base64');
      for (const name of ['defaults', 'streamed', 'none+encrypt', 'direct+encrypt'].filter((n) => realistic!.v[n]))
        notes.push(`restore fetch on the worker, ${name}: ${await fetchBack(env, realistic.v[name].manifestKey, key)}`);
    }
  } finally {
    for (const c of clusters) await c.destroy();
    await env.close();
  }
  console.log('\nsize            run                   wall          ratio vs plain');
  for (const r of rows) console.log(r);
  for (const n of notes) console.log(n);
  const big = random['1GiB'];
  const small = random['100MiB'];
  if (!big || !realistic || process.env.LIFEBOAT_BENCH_QUICK) return;
  const ratio = (a: number | undefined, b: number) => (a !== undefined && b > 0 ? (a / b).toFixed(2) : 'n/a');
  const cores = (await import('node:os')).cpus().length;
  console.log(
    `backup (cpu seconds, ${cores} cores shared, random 1GiB): plain=${big.plain.cpuSeconds.toFixed(1)} ${Object.entries(big.v)
      .map(([k, v]) => `${k}=${v.cpuSeconds.toFixed(1)}`)
      .join(' ')}`,
  );
  console.log(
    `backup (random): wall_ratio_ssh=${ratio(big.v.defaults?.seconds, big.plain.seconds)} wall_ratio_streamed=${ratio(big.v.streamed?.seconds, big.plain.seconds)} wall_ratio_direct=${ratio(big.v.direct?.seconds, big.plain.seconds)} wall_ratio_direct_encrypted=${ratio(big.v['direct+encrypt']?.seconds, big.plain.seconds)} stored_ratio=${ratio(big.v.defaults?.stored, big.plain.stored)} node_cpu_ratio=${ratio(big.v.defaults?.nodeCpu, big.plain.nodeCpu)}`,
  );
  const d = realistic.v.defaults;
  const rd = realistic.v['direct+encrypt'];
  const rs = realistic.v.streamed;
  console.log(
    `backup (realistic): wall_ratio=${ratio(d?.seconds, realistic.plain.seconds)} stored_ratio=${ratio(d?.stored, realistic.plain.stored)} node_cpu_ratio=${ratio(d?.nodeCpu, realistic.plain.nodeCpu)} wall_ratio_streamed=${ratio(rs?.seconds, realistic.plain.seconds)} node_cpu_ratio_streamed=${ratio(rs?.nodeCpu, realistic.plain.nodeCpu)} wall_ratio_direct=${ratio(rd?.seconds, realistic.plain.seconds)} stored_ratio_direct=${ratio(rd?.stored, realistic.plain.stored)}`,
  );
  const rssGrowth = (name: string) => ratio(big.v[name]?.rss, small.v[name]?.rss ?? 0);
  const peak = Math.max(...[big, small, realistic].flatMap((r) => Object.values(r.v).map((v) => v.rss)));
  console.log(
    `backup: wall_ratio=${ratio(big.v.engine?.seconds, big.plain.seconds)} wall_ratio_encrypted=${ratio(big.v['engine+encrypt']?.seconds, big.plain.seconds)} peak_rss_mib=${peak.toFixed(0)} rss_growth=${rssGrowth('engine+encrypt')} rss_growth_direct=${rssGrowth('direct')}/${rssGrowth('direct+encrypt')}`,
  );
}

/** Reads a backup's snapshot back as a restore does (readStoredObject, into a sink that drops it): wall and worker CPU. */
async function fetchBack(env: BenchEnv, manifestKey: string, key: Buffer): Promise<string> {
  const s3 = new S3Client({
    endpoint: env.minio.endpoint,
    region: env.minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.minio.accessKeyId, secretAccessKey: env.minio.secretAccessKey },
  });
  try {
    const manifest = parseManifest(manifestKey, await readManifestText(s3, 'bench', manifestKey));
    const cpu0 = process.cpuUsage();
    const started = process.hrtime.bigint();
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const r = await readStoredObject(s3, 'bench', manifest.snapshot, () => key, sink);
    const cpu = process.cpuUsage(cpu0);
    return `${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(1)} s, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} cpu s (${(r.storedSize / 1048576).toFixed(0)} MiB stored, ${manifest.snapshot.compression})`;
  } finally {
    s3.destroy();
  }
}

/** Direct mode: the worker takes the snapshot itself (no SSH in the data path), like the plain script's etcdctl. */
function directMode(env: BenchEnv, cluster: SandboxCluster): { setup: () => Promise<void>; extra: Record<string, unknown> } {
  const certs = { ca: join(env.dir, 'etcd-ca.crt'), cert: join(env.dir, 'etcd-client.crt'), key: join(env.dir, 'etcd-client.key') };
  return {
    setup: async () => {
      // The worker's copy of an etcd client certificate.
      await copyFile(cluster.controlPlane.path('/etc/kubernetes/pki/etcd/ca.crt'), certs.ca);
      await copyFile(cluster.controlPlane.path('/etc/kubernetes/pki/etcd/healthcheck-client.crt'), certs.cert);
      await copyFile(cluster.controlPlane.path('/etc/kubernetes/pki/etcd/healthcheck-client.key'), certs.key);
    },
    extra: {
      etcd: {
        ...cluster.config.etcd,
        direct: {
          endpoints: [`https://${cluster.controlPlane.ip}:2379`],
          caFile: certs.ca,
          certFile: certs.cert,
          keyFile: certs.key,
          etcdctl: join(cluster.binaries.etcd['3.6'], 'etcdctl'),
          etcdutl: join(cluster.binaries.etcd['3.6'], 'etcdutl'),
          workDir: join(env.dir, 'direct-work'),
        },
      },
    },
  };
}

/** One round on the data etcd holds now: the plain script, then each engine variant in a worker process of its own. */
async function round(
  env: BenchEnv,
  cluster: SandboxCluster,
  keyPath: string,
  label: string,
  rows: string[],
  notes: string[] | undefined,
  variants: [string, Record<string, unknown>, { setup?: () => Promise<void>; extra?: Record<string, unknown> }][],
): Promise<{ plain: Plain; v: Record<string, Variant> }> {
  // (a) the plain script, on the node: its CPU is what etcdctl and the AWS CLI spent.
  let nodeCpu = 0;
  const plainTimed = await timed(async () => {
    nodeCpu += parseTimes(
      await cluster.controlPlane.exec(withTimes(['etcdctl', ...etcdctlArgs(), 'snapshot', 'save', '/var/lib/plain.db'])),
    );
    const aws = process.env.LIFEBOAT_AWS_CLI ?? 'aws';
    const { stdout } = await run(
      'bash',
      withTimes([
        aws,
        '--endpoint-url',
        env.minio.endpoint,
        '--region',
        env.minio.region,
        's3',
        'cp',
        '--only-show-errors',
        cluster.controlPlane.path('/var/lib/plain.db'),
        `s3://bench/plain/${label}.db`,
      ]).slice(1),
      { env: { ...process.env, AWS_ACCESS_KEY_ID: env.minio.accessKeyId, AWS_SECRET_ACCESS_KEY: env.minio.secretAccessKey } },
    );
    nodeCpu += parseTimes(stdout);
  });
  const plainFile = cluster.controlPlane.path('/var/lib/plain.db');
  const plainStored = (await stat(plainFile)).size;
  if (notes) notes.push(`compressibility of the ${label} snapshot, ${await compressibility(plainFile)}`);
  await cluster.controlPlane.exec(['rm', '-f', '/var/lib/plain.db']);
  const plain: Plain = { seconds: plainTimed.seconds, cpuSeconds: plainTimed.cpuSeconds, nodeCpu, stored: plainStored };
  rows.push(
    `${label.padEnd(15)} ${'plain script'.padEnd(18)} ${plain.seconds.toFixed(1).padStart(7)} s  node cpu ${nodeCpu.toFixed(1)} s  stored ${(plainStored / 1048576).toFixed(0)} MiB  (etcdctl snapshot save + aws s3 cp)`,
  );
  rows.push(`${''.padEnd(35)} ${formatCpu(plainTimed)}`);
  const v: Record<string, Variant> = {};
  // LIFEBOAT_BENCH_VARIANTS=direct,direct+encrypt: only those (the plain script always runs: the ratios need it).
  const only = process.env.LIFEBOAT_BENCH_VARIANTS?.split(',');
  for (const [name, backup, mode] of variants.filter(([name]) => !only || only.includes(name))) {
    await mode.setup?.();
    const tq = `${label}-${name}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
    const w = await startWorkerProcess(env, cluster, backup, keyPath, tq, mode.extra ?? {});
    try {
      const node0 = await nodeSshCpu(cluster);
      const worker0 = await processTreeCpu(w.proc.child.pid!);
      const r = await timed(() =>
        env.client.workflow.execute(backupCluster, { taskQueue: tq, workflowId: `bench-${tq}`, args: [{ cluster: cluster.config.name }] }),
      );
      await new Promise((res) => setTimeout(res, 500)); // the last SSH session's sshd is reaped
      const node = (await nodeSshCpu(cluster)) - node0;
      const workerCpu = (await processTreeCpu(w.proc.child.pid!)) - worker0;
      const rss = await w.peakRssMiB();
      const res = r.value;
      rows.push(
        `${label.padEnd(15)} ${name.padEnd(18)} ${r.seconds.toFixed(1).padStart(7)} s  ratio ${(r.seconds / plain.seconds).toFixed(2)}  node cpu ${node.toFixed(1)} s  worker cpu ${workerCpu.toFixed(1)} s  peak RSS ${rss.toFixed(0)} MiB  stored ${(res.storedBytes / 1048576).toFixed(0)} MiB (${res.compression}${res.compressedOn ? ` on the ${res.compressedOn}` : ''})  steps: ${res.steps.map((s) => `${s.step} ${(s.ms / 1000).toFixed(1)}`).join(', ')}`,
      );
      rows.push(`${''.padEnd(35)} ${formatCpu(r)}`);
      v[name] = { manifestKey: res.manifestKey, seconds: r.seconds, rss, cpuSeconds: r.cpuSeconds, nodeCpu: node, stored: res.storedBytes };
    } finally {
      await w.proc.stop();
    }
  }
  return { plain, v };
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
