import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { stringify } from 'yaml';
import { temporal } from '@temporalio/proto';
import { ScheduleNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { createSandboxCluster } from '../sandbox/cluster';
import { freePort, startProcess, waitFor, type ManagedProcess } from '../src/devserver/processes';
import { loadConfigFile } from '../src/config/load';
import { scheduleIdOf, spreadCron, syncSchedules } from '../src/schedules/backup-schedules';
import { storageSchema } from '../src/config/schema';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { healthScheduleIdOf } from '../src/schedules/health-schedules';
import { backupCluster } from '../workflows';
import { benchEnv, WORKER_MALLOC_ENV, WORKER_NODE_FLAGS, type BenchEnv } from './env';

/**
 * Fleet benchmark (`npm run bench:fleet -- --clusters 100 --minutes 10 --workers 1`): N clusters, each its own real
 * etcd process reached in direct mode (the worker streams the snapshot itself), one MinIO, one Temporal dev server,
 * and W worker processes on one task queue. Every cluster is backed up every minute (its schedule's second spread by
 * cluster) and health-checked every minute, for M minutes. Measured over the window: backups completed, schedule
 * slots without a completed backup, how late each backup started (the worker's first task of the run vs its slot),
 * CPU per backup of the workers and where the rest of the machine's CPU went (etcd, MinIO, Temporal, the node's
 * sshd), the workers' peak RSS, how long `lifeboat status` takes over the fleet; with W >= 2, the takeover time of a
 * worker SIGKILLed mid-backup. The shared SSH node (one sandbox node, for the PKI archive each backup takes and the
 * health probes) stands in for N nodes. `--health-interval 24h` leaves the window to the backups alone.
 */

const { values: flags } = parseArgs({
  options: {
    clusters: { type: 'string', default: process.env.LIFEBOAT_FLEET_CLUSTERS ?? '100' },
    minutes: { type: 'string', default: process.env.LIFEBOAT_FLEET_MINUTES ?? '10' },
    workers: { type: 'string', default: process.env.LIFEBOAT_FLEET_WORKERS ?? '1' },
    /** Data in each cluster's etcd: a small cluster's few MiB. */
    'etcd-mib': { type: 'string', default: process.env.LIFEBOAT_FLEET_ETCD_MIB ?? '4' },
    /** A long interval (24h) leaves the window to the backups alone: how the worker's CPU splits between the two. */
    'health-interval': { type: 'string', default: process.env.LIFEBOAT_FLEET_HEALTH_INTERVAL ?? '1m' },
  },
});
const CLUSTERS = Number(flags.clusters);
const MINUTES = Number(flags.minutes);
const WORKERS = Number(flags.workers);
const ETCD_MIB = Number(flags['etcd-mib']);
const TASK_QUEUE = 'fleet';
/** The built CLI: the workers run it, and `lifeboat status` is timed through it. */
const CLI = join(__dirname, '../../dist/src/cli/main.js');
const HEARTBEAT_TIMEOUT_S = 30; // the transfer steps' (workflows/activity-options.ts)

/** Set by Temporal on every run a schedule starts: the slot it was started for. */
const SCHEDULED_START = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

const clusterName = (i: number) => `fleet-${String(i).padStart(3, '0')}`;

/** utime+stime of a process and the children it reaped, in seconds (0 once it is gone). */
async function cpuOf(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  const s = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!s) return 0;
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
}
const cpuOfAll = async (pids: (number | undefined)[]) => (await Promise.all(pids.map(cpuOf))).reduce((a, b) => a + b, 0);

async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** One etcd per cluster, on loopback, TLS with the sandbox node's etcd certificates (their SANs hold 127.0.0.1). */
async function startEtcd(
  env: BenchEnv,
  i: number,
  pki: { ca: string; serverCert: string; serverKey: string },
): Promise<{ proc: ManagedProcess; port: number }> {
  const [port, peer] = [await freePort(), await freePort()];
  const name = `e${i}`;
  const dir = join(env.dir, 'etcd', name);
  await mkdir(dir, { recursive: true });
  const proc = startProcess(
    `etcd ${name}`,
    join(env.bins.etcd['3.6'], 'etcd'),
    [
      `--name=${name}`,
      `--data-dir=${join(dir, 'data')}`,
      `--listen-client-urls=https://127.0.0.1:${port}`,
      `--advertise-client-urls=https://127.0.0.1:${port}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=${name}=http://127.0.0.1:${peer}`,
      `--cert-file=${pki.serverCert}`,
      `--key-file=${pki.serverKey}`,
      `--trusted-ca-file=${pki.ca}`,
      '--client-cert-auth',
      // A hundred etcds share this machine's two cores here, where each would have its own machine: fewer raft
      // ticks and no fsync keep their idle cost out of what is measured (their CPU is reported apart anyway).
      '--heartbeat-interval=500',
      '--election-timeout=5000',
      '--unsafe-no-fsync',
      '--log-level=error',
    ],
    { logFile: join(dir, 'etcd.log') },
  );
  return { proc, port };
}

/** `count` keys of `valueBytes` random base64 into an etcd, over its JSON gateway (one keep-alive TLS connection). */
async function fill(agent: Agent, port: number, count: number, valueBytes: number, prefix = '/fill/'): Promise<void> {
  const put = (k: number) =>
    new Promise<void>((resolve, reject) => {
      const body = JSON.stringify({
        key: Buffer.from(`${prefix}${k}`).toString('base64'),
        value: Buffer.from(randomBytes(Math.floor((valueBytes * 3) / 4)).toString('base64')).toString('base64'),
      });
      const req = request({ host: '127.0.0.1', port, path: '/v3/kv/put', method: 'POST', agent }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`etcd put: HTTP ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
  for (let k = 0; k < count; k++) await put(k);
}

const identityOf = (p: ManagedProcess) => `${p.child.pid}@${hostname()}`;

async function main(): Promise<void> {
  for (const [flag, v] of [
    ['--clusters', CLUSTERS],
    ['--minutes', MINUTES],
    ['--workers', WORKERS],
    ['--etcd-mib', ETCD_MIB],
  ] as const)
    if (!Number.isInteger(v) || v < 1) throw new Error(`${flag}: expected a whole number of at least 1, got ${v}`);
  const env = await benchEnv();
  const etcds: { proc: ManagedProcess; port: number }[] = [];
  const workers: ManagedProcess[] = [];
  let destroyNode: (() => Promise<void>) | undefined;
  const log = (line: string) => console.error(`[fleet ${new Date().toISOString().slice(11, 19)}] ${line}`);
  try {
    // The SSH node every cluster's backup archives its PKI from and every health check probes.
    const node = await createSandboxCluster({
      name: 'fleet',
      etcdLine: '3.6',
      withApiserver: false,
      storage: storageSchema.parse({ bucket: 'bench' }),
    });
    destroyNode = () => node.destroy();
    const pkiDir = join(env.dir, 'pki');
    await mkdir(pkiDir);
    const pki = { ca: join(pkiDir, 'ca.crt'), serverCert: join(pkiDir, 'server.crt'), serverKey: join(pkiDir, 'server.key') };
    const client = { cert: join(pkiDir, 'client.crt'), key: join(pkiDir, 'client.key') };
    for (const [from, to] of [
      ['ca.crt', pki.ca],
      ['server.crt', pki.serverCert],
      ['server.key', pki.serverKey],
      ['healthcheck-client.crt', client.cert],
      ['healthcheck-client.key', client.key],
    ])
      await copyFile(node.controlPlane.path(`/etc/kubernetes/pki/etcd/${from}`), to);
    log(`starting ${CLUSTERS} etcd processes with ${ETCD_MIB} MiB each`);
    for (let i = 0; i < CLUSTERS; i++) etcds.push(await startEtcd(env, i, pki));
    const agent = new Agent({
      keepAlive: true,
      ca: await readFile(pki.ca),
      cert: await readFile(client.cert),
      key: await readFile(client.key),
    });
    for (const e of etcds) {
      await waitFor('etcd to answer', () => fill(agent, e.port, 1, 16, '/ready/').then(() => true), 60_000, 200);
      await fill(agent, e.port, ETCD_MIB * 4, 256 * 1024);
    }

    const keyPath = join(env.dir, 'bench.key');
    await writeFile(keyPath, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    process.env.LIFEBOAT_BENCH_S3_KEY = env.minio.accessKeyId;
    process.env.LIFEBOAT_BENCH_S3_SECRET = env.minio.secretAccessKey;
    const bin = env.bins.etcd['3.6'];
    const configFile = join(env.dir, 'fleet.yaml');
    await writeFile(
      configFile,
      stringify({
        temporal: { address: env.temporal.address, taskQueue: TASK_QUEUE },
        encryptionKeys: { bench: { file: keyPath } },
        clusters: etcds.map((e, i) => ({
          name: clusterName(i),
          nodes: node.config.nodes,
          paths: node.config.paths,
          etcd: {
            ...node.config.etcd,
            direct: {
              endpoints: [`https://127.0.0.1:${e.port}`],
              caFile: pki.ca,
              certFile: client.cert,
              keyFile: client.key,
              etcdctl: join(bin, 'etcdctl'),
              etcdutl: join(bin, 'etcdutl'),
            },
          },
          storage: {
            bucket: 'bench',
            prefix: 'fleet',
            region: env.minio.region,
            endpoint: env.minio.endpoint,
            forcePathStyle: true,
            credentials: { accessKeyId: { env: 'LIFEBOAT_BENCH_S3_KEY' }, secretAccessKey: { env: 'LIFEBOAT_BENCH_S3_SECRET' } },
          },
          // Every minute, on the cluster's own second (spreadCron); no random jitter, so every slot is known.
          backup: { cron: ['* * * * *'], jitter: '0s', catchupWindow: '1m', encryptionKey: 'bench', compression: 'zstd' },
          health: { interval: flags['health-interval'] },
        })),
      }),
    );
    const config = await loadConfigFile(configFile);
    const launch = (w: number) =>
      startProcess('worker', 'node', [...WORKER_NODE_FLAGS, CLI, '--config', configFile, 'worker'], {
        logFile: join(env.dir, `worker-${w}.log`),
        env: { ...process.env, ...WORKER_MALLOC_ENV, LOG_FORMAT: 'json', LOG_LEVEL: 'warn' },
      });
    for (let w = 0; w < WORKERS; w++) workers.push(launch(w));
    await new Promise((r) => setTimeout(r, 3000));
    for (const w of workers) if (w.child.exitCode !== null) throw new Error(`a worker exited: ${await readFile(w.logFile, 'utf8')}`);

    await syncSchedules(env.client, config);
    // The window starts on a whole minute at least 30 s after the schedules exist (workers warm, first slots passed).
    const windowStart = Math.ceil((Date.now() + 30_000) / 60_000) * 60_000;
    const windowEnd = windowStart + MINUTES * 60_000;
    log(`schedules synced; measuring from ${new Date(windowStart).toISOString()} for ${MINUTES} min`);
    await new Promise((r) => setTimeout(r, windowStart - Date.now()));
    const pidsOf = (ps: ManagedProcess[]) => ps.map((p) => p.child.pid);
    const sshdPid = Number((await readFile(join(node.controlPlane.dir, 'sshd.pid'), 'utf8')).trim());
    const cpuNow = async () => ({
      workers: await cpuOfAll(pidsOf(workers)),
      etcd: await cpuOfAll(pidsOf(etcds.map((e) => e.proc))),
      minio: await cpuOf(env.minio.process.child.pid),
      temporal: await cpuOf(env.temporal.process.child.pid),
      nodeSsh: await cpuOf(sshdPid),
    });
    const before = await cpuNow();
    await new Promise((r) => setTimeout(r, windowEnd - Date.now()));
    const after = await cpuNow();
    const rss = Math.max(...(await Promise.all(workers.map((w) => peakRssMiB(w.child.pid!)))));
    // `lifeboat status` over the whole fleet, as an operator runs it (every cluster's bucket, two visibility queries).
    // It exits 1 when a cluster has a problem; its JSON is read either way.
    const statusStarted = Date.now();
    const statusRun = await promisify(execFile)('node', [CLI, '--config', configFile, 'status', '--json'], {
      maxBuffer: 64 * 1024 * 1024,
    }).catch((err: { stdout?: string; stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '' }));
    const statusSeconds = (Date.now() - statusStarted) / 1000;
    const fleetStatus = JSON.parse(statusRun.stdout || '{"clusters":[]}') as { clusters: { backup?: unknown; problems: string[] }[] };
    log(
      `lifeboat status --json: ${fleetStatus.clusters.length} clusters in ${statusSeconds.toFixed(2)} s, ${fleetStatus.clusters.filter((c) => c.backup).length} with a backup, ${fleetStatus.clusters.filter((c) => c.problems.length > 0).length} with a problem (the first: ${fleetStatus.clusters.flatMap((c) => c.problems)[0] ?? 'none'})${statusRun.stderr ? ` (stderr: ${statusRun.stderr.trim().slice(0, 300)})` : ''}`,
    );
    // No new runs; the ones the window started may finish.
    // An overloaded dev server answers UNAVAILABLE ("shard status unknown", 55 clusters on 2 cores) for a while: the
    // deletes are retried rather than losing the run's figures.
    const deleteSchedule = (id: string) =>
      waitFor(
        `schedule ${id} to be deleted`,
        () =>
          env.client.schedule
            .getHandle(id)
            .delete()
            .then(
              () => true,
              (err: unknown) => {
                if (err instanceof ScheduleNotFoundError) return true;
                throw err;
              },
            ),
        120_000,
        1000,
      );
    for (let i = 0; i < CLUSTERS; i++) {
      await deleteSchedule(scheduleIdOf(clusterName(i)));
      await deleteSchedule(healthScheduleIdOf(clusterName(i)));
    }
    // Runs still going after 3 minutes count as not completed (their slots missed), not as a failed bench.
    await waitFor(
      'the last backups to finish',
      async () => {
        for await (const _ of env.client.workflow.list({ query: `WorkflowType = 'backupCluster' AND ExecutionStatus = 'Running'` }))
          return false;
        return true;
      },
      180_000,
      1000,
    ).catch((err: Error) => log(err.message));

    // Slots: each cluster's minute, on its schedule's second, inside the window; a slot counts once a backup
    // scheduled for it completed.
    const completed = new Map<string, number>();
    const lateness: number[] = [];
    const firingLateness: number[] = [];
    let failed = 0;
    for await (const wf of env.client.workflow.list({ query: `WorkflowType = 'backupCluster'` })) {
      const scheduledFor = wf.typedSearchAttributes.get(SCHEDULED_START);
      if (scheduledFor === undefined) continue; // the takeover's, started by hand
      const slot = scheduledFor.getTime();
      if (slot < windowStart || slot >= windowEnd) continue;
      if (wf.status.name !== 'COMPLETED') {
        failed++;
        continue;
      }
      const history = await env.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      const firstTask = history.events?.find((e) => e.workflowTaskStartedEventAttributes)?.eventTime;
      const started = firstTask ? Number(firstTask.seconds) * 1000 + (firstTask.nanos ?? 0) / 1e6 : wf.startTime.getTime();
      lateness.push((started - slot) / 1000);
      firingLateness.push((wf.startTime.getTime() - slot) / 1000);
      const cluster = wf.workflowId.replace(/^backup-/, '').replace(/-\d{4}-\d\d-\d\dT.*$/, '');
      completed.set(`${cluster}@${slot}`, 1);
    }
    let slots = 0;
    let missed = 0;
    for (const { name, backup } of config.clusters) {
      const second = Number(spreadCron(backup.cron[0], name).split(' ')[0]);
      for (let t = windowStart + second * 1000; t < windowEnd; t += 60_000) {
        slots++;
        if (!completed.has(`${name}@${t}`)) missed++;
      }
    }
    const backups = completed.size;
    const d = (k: keyof typeof before) => after[k] - before[k];
    const windowS = (windowEnd - windowStart) / 1000;
    log(`slots ${slots}, completed ${backups}, failed ${failed}, missed ${missed}`);
    log(
      `start lateness (worker's first task vs slot): p50 ${percentile(lateness, 50).toFixed(2)} s, p99 ${percentile(lateness, 99).toFixed(2)} s, max ${Math.max(...lateness).toFixed(2)} s; the schedule's own firing: p99 ${percentile(firingLateness, 99).toFixed(2)} s`,
    );
    log(
      `cpu over ${windowS} s (cores used): workers ${d('workers').toFixed(1)} s (${(d('workers') / windowS).toFixed(2)}), etcd x${CLUSTERS} ${d('etcd').toFixed(1)} s (${(d('etcd') / windowS).toFixed(2)}), minio ${d('minio').toFixed(1)} s (${(d('minio') / windowS).toFixed(2)}), temporal ${d('temporal').toFixed(1)} s (${(d('temporal') / windowS).toFixed(2)}), node sshd ${d('nodeSsh').toFixed(1)} s (${(d('nodeSsh') / windowS).toFixed(2)})`,
    );
    log(
      `per backup (with its cluster's health check of the same minute): worker ${(d('workers') / backups).toFixed(3)} cpu s, minio ${(d('minio') / backups).toFixed(3)}, temporal ${(d('temporal') / backups).toFixed(3)}, node sshd ${(d('nodeSsh') / backups).toFixed(3)}`,
    );

    // Takeover (two workers or more): a backup large enough to be caught mid-stream, its worker SIGKILLed.
    let takeover = 'n/a';
    if (WORKERS >= 2) {
      await fill(agent, etcds[0].port, 150, 1024 * 1024, '/big/');
      takeover = (await measureTakeover(env, workers)).toFixed(1);
    }
    agent.destroy();
    console.log(
      `fleet: clusters=${CLUSTERS} workers=${WORKERS} minutes=${MINUTES} backups=${backups} missed_slots=${missed} p99_start_late_s=${percentile(lateness, 99).toFixed(2)} cpu_s_per_backup=${(d('workers') / backups).toFixed(3)} worker_peak_rss_mib=${rss.toFixed(0)} takeover_s=${takeover}`,
    );
  } finally {
    for (const w of workers) await w.stop();
    for (const e of etcds) await e.proc.stop();
    await destroyNode?.();
    await env.close();
  }
}

/** Kill -> the other worker's attempt of the same step started (its lastStartedTime), in seconds. */
async function measureTakeover(env: BenchEnv, workers: ManagedProcess[]): Promise<number> {
  const handle: WorkflowHandle = await env.client.workflow.start(backupCluster, {
    taskQueue: TASK_QUEUE,
    workflowId: `fleet-takeover-${Date.now()}`,
    args: [{ cluster: clusterName(0), reason: 'takeover' }],
  });
  const stream = async () =>
    (await handle.describe()).raw.pendingActivities?.find(
      (a) =>
        a.activityType?.name === 'streamSnapshot' && a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
    );
  const first = await waitFor('the snapshot stream to run', stream, 120_000, 20);
  const victim = workers.find((w) => identityOf(w) === first.lastWorkerIdentity);
  if (!victim) throw new Error(`no worker has identity ${first.lastWorkerIdentity}`);
  victim.child.kill('SIGKILL');
  const killedAt = Date.now();
  await victim.exited;
  const retried = await waitFor(
    'another attempt of the stream to start',
    async () => {
      const a = await stream();
      return a && (a.attempt ?? 1) > 1 ? a : undefined;
    },
    (HEARTBEAT_TIMEOUT_S + 60) * 1000,
    200,
  );
  const startedAt = Number(retried.lastStartedTime!.seconds) * 1000 + (retried.lastStartedTime!.nanos ?? 0) / 1e6;
  await handle.result();
  return (startedAt - killedAt) / 1000;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
