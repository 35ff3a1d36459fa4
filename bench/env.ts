import type { Client } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { startTemporalDevServer, type DevServer } from '../src/devserver/temporal';
import { repoRoot, serverBinaries, type ServerBinaries } from '../src/devserver/binaries';
import { startMinio, type MinioServer } from '../sandbox/minio';
import { freePort, startProcess, type ManagedProcess } from '../src/devserver/processes';
import type { SandboxCluster } from '../sandbox/cluster';
import { parseConfig } from '../src/config/load';
import { connectClient } from '../src/temporal/connect';
import { localDevServerTarget } from '../src/temporal/connection';

export const run = promisify(execFile);

/** The V8 flags the image and `npm start` give the worker (see Dockerfile): the bench measures the worker as shipped. */
export const WORKER_NODE_FLAGS = [
  '--max-semi-space-size=2',
  '--expose-gc',
  // LIFEBOAT_BENCH_WORKER_FLAGS="--trace-gc ...": more flags for the bench's workers, to look into them (Node refuses
  // some of them in NODE_OPTIONS); their output is in the worker's log (LIFEBOAT_KEEP_TMP=1 keeps it).
  ...(process.env.LIFEBOAT_BENCH_WORKER_FLAGS?.split(/\s+/).filter(Boolean) ?? []),
];
/** The malloc settings the image and `npm start` give the worker (see Dockerfile). */
export const WORKER_MALLOC_ENV = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' };

export interface BenchEnv {
  dir: string;
  bins: ServerBinaries;
  temporal: DevServer;
  minio: MinioServer;
  client: Client;
  /** Stops the Temporal dev server and starts it again on the same port (its workflows kept only with `temporalDb`). */
  restartTemporal(downMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface BenchEnvOptions {
  /** The dev server keeps its workflows in a SQLite file, so a restart (restartTemporal) picks up where it stopped. */
  temporalDb?: boolean;
  /** MinIO's data on a tmpfs of this size (MiB) of its own, mounted at `<dir>/minio`: a store that can be filled. */
  minioTmpfsMiB?: number;
}

export async function benchEnv(options: BenchEnvOptions = {}): Promise<BenchEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-bench-'));
  const bins = await serverBinaries();
  const temporalOptions = {
    binary: bins.temporal,
    port: await freePort(),
    logFile: join(dir, 'temporal.log'),
    startTimeoutMs: 120_000,
    ...(options.temporalDb ? { dbFile: join(dir, 'temporal.db') } : {}),
  };
  let temporal = await startTemporalDevServer(temporalOptions);
  const minioDir = join(dir, 'minio');
  if (options.minioTmpfsMiB) {
    await mkdir(minioDir);
    await run('mount', ['-t', 'tmpfs', '-o', `size=${options.minioTmpfsMiB}m`, 'tmpfs', minioDir]);
  }
  const minio = await startMinio(bins.minio, minioDir);
  await minio.createBucket('bench');
  // Through the engine's connection module, as the CLI's client: the bench's own dev server, whatever TEMPORAL_* says.
  const temporalClient = await connectClient(parseConfig({}, 'bench config'), {
    target: localDevServerTarget(temporal.address, 'lifeboat'),
    connectTimeoutMs: 30_000,
  });
  return {
    dir,
    bins,
    get temporal() {
      return temporal;
    },
    minio,
    client: temporalClient.client,
    async restartTemporal(downMs = 0) {
      await temporal.stop();
      await new Promise((r) => setTimeout(r, downMs));
      temporal = await startTemporalDevServer(temporalOptions);
    },
    async close() {
      await temporalClient.close();
      await minio.stop();
      await temporal.stop();
      if (options.minioTmpfsMiB) await run('umount', [minioDir]).catch(() => undefined);
      // The bucket holds several GiB after a run: keep it only when asked to.
      if (process.env.LIFEBOAT_KEEP_TMP) console.error(`[bench] kept ${dir}`);
      else await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The engine's worker as its own process (as users run it), so its peak RSS (VmHWM) is its own. */
export async function startWorkerProcess(
  env: BenchEnv,
  cluster: SandboxCluster,
  backup: Record<string, unknown>,
  keyPath: string,
  taskQueue: string,
  clusterExtra: Record<string, unknown> = {},
  /** Top-level config (alerts, ...) and environment (LIFEBOAT_METRICS_ADDRESS, ...) for the worker. */
  extra: { config?: Record<string, unknown>; env?: Record<string, string> } = {},
): Promise<{ proc: ManagedProcess; peakRssMiB(): Promise<number>; resetPeakRss(): Promise<void>; crash(): Promise<void> }> {
  const configFile = join(env.dir, `${taskQueue}.yaml`);
  process.env.LIFEBOAT_BENCH_S3_KEY = env.minio.accessKeyId;
  process.env.LIFEBOAT_BENCH_S3_SECRET = env.minio.secretAccessKey;
  await writeFile(
    configFile,
    stringify({
      temporal: { address: env.temporal.address, taskQueue },
      encryptionKeys: { bench: { file: keyPath } },
      ...extra.config,
      clusters: [
        {
          ...cluster.config,
          storage: {
            bucket: 'bench',
            prefix: taskQueue,
            region: env.minio.region,
            endpoint: env.minio.endpoint,
            forcePathStyle: true,
            credentials: { accessKeyId: { env: 'LIFEBOAT_BENCH_S3_KEY' }, secretAccessKey: { env: 'LIFEBOAT_BENCH_S3_SECRET' } },
          },
          backup,
          recovery: { approval: 'auto' },
          ...clusterExtra,
        },
      ],
    }),
  );
  const launch = () =>
    startProcess(
      'worker',
      'node',
      [
        ...WORKER_NODE_FLAGS,
        // LIFEBOAT_BENCH_PROFILE=<dir>: a CPU profile of each worker, written there when it stops.
        ...(process.env.LIFEBOAT_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.LIFEBOAT_BENCH_PROFILE}`] : []),
        // From the checkout (repoRoot): this file runs compiled (dist-testbed/bench) and under jest (bench/).
        join(repoRoot, 'dist/src/cli/main.js'),
        '--config',
        configFile,
        'worker',
      ],
      {
        logFile: join(env.dir, `${taskQueue}.log`),
        env: { ...process.env, ...WORKER_MALLOC_ENV, LOG_FORMAT: 'json', LOG_LEVEL: 'warn', ...extra.env },
      },
    );
  let proc = launch();
  await new Promise((r) => setTimeout(r, 3000)); // let it connect and poll
  if (proc.child.exitCode !== null) throw new Error(`the worker exited: ${await readFile(join(env.dir, `${taskQueue}.log`), 'utf8')}`);
  return {
    get proc() {
      return proc;
    },
    /** SIGKILL (a crash, an OOM kill) and a new worker on the same config and queue, as a supervisor would start. */
    async crash() {
      proc.child.kill('SIGKILL');
      await proc.exited;
      proc = launch();
    },
    async peakRssMiB() {
      const status = await readFile(`/proc/${proc.child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
    },
    /** Starts the peak over (Linux: `5` to clear_refs resets VmHWM to the current RSS), to measure one phase alone. */
    async resetPeakRss() {
      await writeFile(`/proc/${proc.child.pid}/clear_refs`, '5');
    },
  };
}

/** CPU time the whole machine spent busy (user, nice, system, irq, softirq) since boot, in seconds. */
async function machineBusySeconds(): Promise<number> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / 100; // USER_HZ is 100 on Linux
}

/** CPU seconds (user + system, its own and its reaped children's) of every process now running, by pid, with its command name. */
async function processCpu(): Promise<Map<string, { name: string; seconds: number }>> {
  const byPid = new Map<string, { name: string; seconds: number }>();
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    if (!stat) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    byPid.set(pid, {
      name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
      seconds: (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100,
    });
  }
  return byPid;
}

/**
 * Wall time of `body`, the CPU seconds the whole machine was busy meanwhile, and which programs spent them: the
 * node, the worker, etcd and MinIO share this machine's cores, so when the busy time nears cores × wall, the run is
 * CPU-bound and the ratio says how much work each side does rather than how long it waits. A command that exited
 * meanwhile (etcdctl, the AWS CLI, an SSH session) counts under the process that waited for it.
 */
export async function timed<T>(
  body: () => Promise<T>,
): Promise<{ seconds: number; cpuSeconds: number; cpuByProgram: [string, number][]; value: T }> {
  const busy = await machineBusySeconds();
  const before = await processCpu();
  const start = process.hrtime.bigint();
  const value = await body();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpuSeconds = (await machineBusySeconds()) - busy;
  const byProgram = new Map<string, number>();
  for (const [pid, now] of await processCpu())
    byProgram.set(now.name, (byProgram.get(now.name) ?? 0) + now.seconds - (before.get(pid)?.seconds ?? 0));
  const cpuByProgram = [...byProgram].filter(([, s]) => s >= 0.1).sort((a, b) => b[1] - a[1]);
  return { seconds, cpuSeconds, cpuByProgram, value };
}

export function formatCpu(t: { cpuSeconds: number; cpuByProgram: [string, number][] }): string {
  return `cpu ${t.cpuSeconds.toFixed(1)} s (${t.cpuByProgram
    .slice(0, 5)
    .map(([name, s]) => `${name} ${s.toFixed(1)}`)
    .join(', ')})`;
}

export function awsCli(env: BenchEnv, args: string[]): Promise<{ stdout: string }> {
  const aws = process.env.LIFEBOAT_AWS_CLI ?? 'aws';
  return run(aws, ['--endpoint-url', env.minio.endpoint, '--region', env.minio.region, ...args], {
    env: { ...process.env, AWS_ACCESS_KEY_ID: env.minio.accessKeyId, AWS_SECRET_ACCESS_KEY: env.minio.secretAccessKey },
    maxBuffer: 64 * 1024 * 1024,
  });
}
