import { Client, Connection } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { startTemporalDevServer, type DevServer } from '../src/devserver/temporal';
import { serverBinaries, type ServerBinaries } from '../src/sandbox/binaries';
import { startMinio, type MinioServer } from '../src/sandbox/minio';
import { freePort, startProcess, type ManagedProcess } from '../src/sandbox/processes';
import type { SandboxCluster } from '../src/sandbox/cluster';

export const run = promisify(execFile);

/** The V8 flags the image and `npm start` give the worker (see Dockerfile): the bench measures the worker as shipped. */
export const WORKER_NODE_FLAGS = ['--max-semi-space-size=2', '--expose-gc'];

export interface BenchEnv {
  dir: string;
  bins: ServerBinaries;
  temporal: DevServer;
  minio: MinioServer;
  client: Client;
  close(): Promise<void>;
}

export async function benchEnv(): Promise<BenchEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-bench-'));
  const bins = await serverBinaries();
  const temporal = await startTemporalDevServer({ binary: bins.temporal, port: await freePort(), logFile: join(dir, 'temporal.log'), startTimeoutMs: 120_000 });
  const minio = await startMinio(bins.minio, join(dir, 'minio'));
  await minio.createBucket('bench');
  const connection = await Connection.connect({ address: temporal.address });
  return {
    dir,
    bins,
    temporal,
    minio,
    client: new Client({ connection }),
    async close() {
      await connection.close();
      await minio.stop();
      await temporal.stop();
      // The bucket holds several GiB after a run: keep it only when asked to.
      if (process.env.LIFEBOAT_KEEP_TMP) console.error(`[bench] kept ${dir}`);
      else await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The engine's worker as its own process (as users run it), so its peak RSS (VmHWM) is its own. */
export async function startWorkerProcess(env: BenchEnv, cluster: SandboxCluster, backup: Record<string, unknown>, keyPath: string, taskQueue: string, clusterExtra: Record<string, unknown> = {}): Promise<{ proc: ManagedProcess; peakRssMiB(): Promise<number> }> {
  const configFile = join(env.dir, `${taskQueue}.yaml`);
  process.env.LIFEBOAT_BENCH_S3_KEY = env.minio.accessKeyId;
  process.env.LIFEBOAT_BENCH_S3_SECRET = env.minio.secretAccessKey;
  await writeFile(
    configFile,
    stringify({
      temporal: { address: env.temporal.address, taskQueue },
      encryptionKeys: { bench: { file: keyPath } },
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
  const proc = startProcess('worker', 'node', [...WORKER_NODE_FLAGS, join(__dirname, '../src/cli/main.js'), '--config', configFile, 'worker'], { logFile: join(env.dir, `${taskQueue}.log`), env: { ...process.env, LOG_FORMAT: 'json', LOG_LEVEL: 'warn' } });
  await new Promise((r) => setTimeout(r, 3000)); // let it connect and poll
  if (proc.child.exitCode !== null) throw new Error(`the worker exited: ${await readFile(join(env.dir, `${taskQueue}.log`), 'utf8')}`);
  return {
    proc,
    async peakRssMiB() {
      const status = await readFile(`/proc/${proc.child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
    },
  };
}

/** CPU time the whole machine spent busy (user, nice, system, irq, softirq) since boot, in seconds. */
async function machineBusySeconds(): Promise<number> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (fields[0]! + fields[1]! + fields[2]! + fields[5]! + fields[6]!) / 100; // USER_HZ is 100 on Linux
}

/**
 * Wall time of `body`, and the CPU seconds the whole machine was busy meanwhile: the node, the worker, etcd and
 * MinIO share this machine's cores, so when the busy time nears cores × wall, the run is CPU-bound and the ratio
 * says how much work each side does rather than how long it waits.
 */
export async function timed<T>(body: () => Promise<T>): Promise<{ seconds: number; cpuSeconds: number; value: T }> {
  const busy = await machineBusySeconds();
  const start = process.hrtime.bigint();
  const value = await body();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { seconds, cpuSeconds: (await machineBusySeconds()) - busy, value };
}

export function awsCli(env: BenchEnv, args: string[]): Promise<{ stdout: string }> {
  const aws = process.env.LIFEBOAT_AWS_CLI ?? 'aws';
  return run(aws, ['--endpoint-url', env.minio.endpoint, '--region', env.minio.region, ...args], {
    env: { ...process.env, AWS_ACCESS_KEY_ID: env.minio.accessKeyId, AWS_SECRET_ACCESS_KEY: env.minio.secretAccessKey },
    maxBuffer: 64 * 1024 * 1024,
  });
}

