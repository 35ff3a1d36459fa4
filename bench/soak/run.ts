import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cp, mkdir, mkdtemp, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { startAlertmanager, type AlertmanagerServer } from '../../sandbox/alertmanager';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { sh } from '../../sandbox/netns';
import { startPrometheus, type PrometheusServer } from '../../sandbox/prometheus';
import type { TrustRules } from '../../src/backup/trusted-catalog';
import { parseConfig } from '../../src/config/load';
import { planPoint } from '../../src/continuous/point';
import { repoRoot } from '../../src/devserver/binaries';
import { freePort, waitFor } from '../../src/devserver/processes';
import { createEtcdClient, unaryCall, type EtcdClient } from '../../src/etcd/grpc/client';
import type { RangeResponse } from '../../src/etcd/grpc/proto';
import { status } from '../../src/etcd/grpc/status';
import { compareRevisions, type Revision } from '../../src/etcd/revision';
import { syncSchedules } from '../../src/schedules/backup-schedules';
import { drillScheduleIdOf } from '../../src/schedules/drill-schedules';
import { healthScheduleIdOf } from '../../src/schedules/health-schedules';
import { scheduleIdOf } from '../../src/schedules/backup-schedules';
import { captureWorkflowId, recoveryWorkflowId } from '../../workflows/run-ids';
import { benchEnv, startWorkerProcess, type BenchEnv } from '../env';
import { failuresOutsideFaults, lostWrites, newer, secretLeaks, verifyBackups } from './checks';
import { ALERT_FAULTS, faultSequence, injectFault, type FaultKind, type FaultRecord, type SoakWorld } from './faults';
import { seededPrng } from './prng';
import { failureOf, listRuns } from './runs';
import { SOAK_PREFIX, startWriteLoad } from './writer';

export interface SoakOptions {
  minutes: number;
  seed: number;
  /** The fault kinds drawn from (default: all). */
  kinds: readonly FaultKind[];
  /** Seconds from one fault's start to the next one's (at least FAULT_SPACING_MS after its end), drawn in [min, max]. */
  gapSeconds?: [number, number];
  writesPerSecond?: number;
  /** Restore drills on a schedule (every 3 minutes). */
  drills?: boolean;
  log?: (line: string) => void;
}

export interface SoakCounts {
  minutes: number;
  faults: number;
  runs: number;
  unexpected_failures: number;
  lost_writes: number;
  stuck: number;
  healthy_restored: number;
  recoveries: number;
  seed: number;
}

export interface SoakResult {
  counts: SoakCounts;
  /** The last line of `npm run soak`. */
  line: string;
  faults: FaultRecord[];
  /** Everything that broke an invariant, one line each (empty: the run is clean). */
  problems: string[];
  acked: number;
}

const CLUSTER = 'soak';
const TQ = 'soak';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** After a fault ends, the runs it disturbed get this long to fail without it counting against the engine. */
const FAULT_GRACE_MS = 60_000;
/** How long the alert path may take from a destruction to a verified API. */
const RECOVERY_TARGET_SECONDS = 300;
/** How long the runs under way when the faults stop get to finish. */
const SETTLE_MS = 300_000;
/** The least time between one fault's end and the next one's start. */
const FAULT_SPACING_MS = 10_000;

export function soakLine(c: SoakCounts): string {
  return `soak: minutes=${c.minutes} faults=${c.faults} runs=${c.runs} unexpected_failures=${c.unexpected_failures} lost_writes=${c.lost_writes} stuck=${c.stuck} healthy_restored=${c.healthy_restored} recoveries=${c.recoveries} seed=${c.seed}`;
}

/** Processes whose command line names `dir` (the run's servers, nodes, worker): none may outlive the run. */
async function processesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ');
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '');
    if (cmd.includes(dir) || cwd.startsWith(dir)) found.push(`${pid} ${cmd.slice(0, 120)}`);
  }
  return found;
}

/**
 * An hour (or `minutes`) of faults on a sandbox cluster under the engine's own schedules (a backup every minute,
 * continuous capture, health checks every 5 s, drills) and a steady write load, then the invariants: nothing stuck,
 * every backup verifies, every destruction recovered by the alert path and nothing else restored, every acknowledged
 * write up to the newest durable point still there, no secret in any history or the worker's log, nothing left behind.
 * Servers of its own (Temporal dev server, MinIO, nodes, Prometheus, Alertmanager), removed at the end.
 */
export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  const rng = seededPrng(o.seed);
  const [gapMin, gapMax] = o.gapSeconds ?? [30, 90];
  const alerting = o.kinds.some((k) => ALERT_FAULTS.includes(k));
  const t0 = Date.now();
  const clock = () => {
    const s = Math.round((Date.now() - t0) / 1000);
    return `+${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  };
  log(
    `soak: seed=${o.seed} minutes=${o.minutes} faults from: ${o.kinds.join(', ')} (replay: npm run soak -- --minutes ${o.minutes} --seed ${o.seed}${o.kinds.length < 8 ? ` --faults ${o.kinds.join(',')}` : ''})`,
  );
  /** Lost writes, stuck runs, restores of a healthy cluster: each has its own count in the last line. */
  const problems: string[] = [];
  /** Everything else that broke an invariant: the line's unexpected_failures. */
  const unexpected: string[] = [];
  let acked = 0;
  const faults: FaultRecord[] = [];
  const tmpBefore = new Set(await readdir(tmpdir()));

  const env: BenchEnv = await benchEnv({ temporalDb: true, minioTmpfsMiB: 1024 });
  let cluster: SandboxCluster | undefined;
  let etcd: EtcdClient | undefined;
  let hook: Server | undefined;
  let prometheus: PrometheusServer | undefined;
  let alertmanager: AlertmanagerServer | undefined;
  let worker: Awaited<ReturnType<typeof startWorkerProcess>> | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let writes: ReturnType<typeof startWriteLoad> | undefined;
  const counts: SoakCounts = {
    minutes: o.minutes,
    faults: 0,
    runs: 0,
    unexpected_failures: 0,
    lost_writes: 0,
    stuck: 0,
    healthy_restored: 0,
    recoveries: 0,
    seed: o.seed,
  };
  const workerTmp = join(env.dir, 'worker-tmp');
  const writesFile = join(env.dir, 'acked-writes.jsonl');
  const workerLog = join(env.dir, `${TQ}.log`);
  try {
    cluster = await createSandboxCluster({
      name: CLUSTER,
      etcdLine: '3.6',
      withApiserver: alerting,
      storage: { bucket: 'bench', prefix: TQ, region: env.minio.region, forcePathStyle: true },
      dir: join(env.dir, 'cluster'),
    });
    const node = cluster.controlPlane;
    // The secrets the run must never show: the store's secret, the backup key, the alert token, the webhook's path.
    const keyPath = join(env.dir, 'soak.key');
    const backupKey = randomBytes(32);
    await writeFile(keyPath, backupKey.toString('base64'), { mode: 0o600 });
    const token = randomBytes(24).toString('hex');
    const tokenFile = join(env.dir, 'alerts.token');
    await writeFile(tokenFile, token, { mode: 0o600 });
    const hookSecret = `hook-${randomBytes(12).toString('hex')}`;
    hook = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200).end('ok'));
    });
    await new Promise<void>((resolve) => hook!.listen(0, '127.0.0.1', resolve));
    process.env.LIFEBOAT_SOAK_NOTIFY_URL = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook/${hookSecret}`;
    const secrets = {
      'the S3 secret': env.minio.secretAccessKey,
      'the encryption key': backupKey.toString('base64'),
      'the encryption key (hex)': backupKey.toString('hex'),
      'the alert token': token,
      "the webhook's secret": hookSecret,
    };

    await mkdir(workerTmp);
    const metricsAddress = `127.0.0.1:${await freePort()}`;
    const alertsAddress = `127.0.0.1:${await freePort()}`;
    worker = await startWorkerProcess(
      env,
      cluster,
      { encryptionKey: 'bench', compression: 'zstd', cron: ['* * * * *'], jitter: '0s', continuous: { segmentSeconds: 2 } },
      keyPath,
      TQ,
      {
        recovery: { approval: 'required', onAlert: 'auto', confirm: { window: '10s', probes: 3 }, cooldown: '0s' },
        health: { interval: '5s', timeout: '3s' },
      },
      {
        config: {
          alerts: { token: { file: tokenFile }, notify: { url: { env: 'LIFEBOAT_SOAK_NOTIFY_URL' } } },
          ...(o.drills
            ? {
                drill: {
                  enabled: true,
                  cron: ['*/3 * * * *'],
                  jitter: '0s',
                  scratchDir: join(workerTmp, 'drills'),
                  etcd: { '3.6': cluster.binaries.etcd['3.6'] },
                },
              }
            : {}),
        },
        env: {
          LIFEBOAT_METRICS_ADDRESS: metricsAddress,
          LIFEBOAT_ALERTS_ADDRESS: alertsAddress,
          LOG_LEVEL: 'info',
          TMPDIR: workerTmp,
        },
      },
    );
    if (alerting) {
      alertmanager = await startAlertmanager({
        dir: join(env.dir, 'alertmanager'),
        webhookUrl: `http://${alertsAddress}/alerts`,
        bearerTokenFile: tokenFile,
        groupWait: '1s',
      });
      prometheus = await startPrometheus({
        dir: join(env.dir, 'prometheus'),
        scrapeTargets: [metricsAddress],
        scrapeInterval: '5s',
        rulesFiles: [join(repoRoot, 'deploy/prometheus/lifeboat.rules.yml')],
        forOverride: '15s',
        alertmanagerUrl: alertmanager.url,
      });
    }
    const config = parseConfig(parse(await readFile(join(env.dir, `${TQ}.yaml`), 'utf8')), 'soak config');
    const { client } = env;
    await syncSchedules(client, config);

    const pki = (f: string) => readFile(node.path(`/etc/kubernetes/pki/etcd/${f}`));
    etcd = createEtcdClient({
      endpoint: `${node.ip}:2379`,
      tls: { ca: await pki('ca.crt'), cert: await pki('healthcheck-client.crt'), key: await pki('healthcheck-client.key') },
    });
    writes = startWriteLoad(etcd, writesFile, o.writesPerSecond ?? 5, `s${o.seed}`);
    const s3 = env.minio.client();
    const rules: TrustRules = {
      storage: { bucket: 'bench', prefix: TQ },
      cluster: CLUSTER,
      signsManifests: true,
      loadKey: async () => backupKey,
    };
    const durablePoint = async (): Promise<Revision | undefined> =>
      planPoint(s3, rules, 'newest', { now: new Date() }).then(
        (p) => p.revision,
        () => undefined,
      );
    await waitFor('the capture to prove its first point', durablePoint, 300_000, 2000);
    log(`${clock()} ready: cluster ${CLUSTER} (${node.ip}), worker, schedules, capture; writing ${o.writesPerSecond ?? 5}/s`);

    // A worker that dies on its own is a finding; it is started again so the run goes on.
    let crashing = false;
    const w = worker;
    watchdog = setInterval(() => {
      if (crashing || w.proc.child.exitCode === null) return;
      unexpected.push(`${clock()} the worker exited by itself (code ${w.proc.child.exitCode}); started again`);
      crashing = true;
      void w.crash().finally(() => (crashing = false));
    }, 2000);
    const world: SoakWorld = {
      env,
      client,
      cluster,
      worker: {
        async crash() {
          crashing = true;
          try {
            await w.crash();
          } finally {
            crashing = false;
          }
        },
      },
      writes,
      rng,
      storeDir: join(env.dir, 'minio'),
      durablePoint,
      recoveryTargetSeconds: RECOVERY_TARGET_SECONDS,
    };

    // The faults, one after another, until the time is up.
    const next = faultSequence(rng, o.kinds);
    const deadline = Date.now() + o.minutes * 60_000;
    // Start to start, as "a fault every 30 to 90 s" means: measured from the previous fault's end, the faults that last
    // (a destruction and its recovery, 60-80 s) stretched the hour's 60 expected faults to 42 (seed 20261204). At
    // least FAULT_SPACING_MS after the previous one's end, so no fault lands on the one before's last breath.
    let lastStart = Date.now();
    for (;;) {
      const gap = rng.int(gapMin, gapMax) * 1000;
      const at = Math.max(lastStart + gap, Date.now() + FAULT_SPACING_MS);
      if (at >= deadline) break;
      await sleep(at - Date.now());
      lastStart = Date.now();
      const kind = next();
      log(`${clock()} fault ${kind}`);
      const f = await injectFault(world, kind);
      faults.push(f);
      log(
        `${clock()} fault ${kind} over (${Math.round((f.endedAt.getTime() - f.startedAt.getTime()) / 1000)} s): ${f.detail}${f.problem ? ` PROBLEM: ${f.problem}` : ''}`,
      );
      if (f.problem) unexpected.push(`${f.kind} at ${f.startedAt.toISOString()}: ${f.problem}`);
    }
    counts.faults = faults.length;
    await sleep(Math.max(0, deadline - Date.now()));

    // Settle: no new scheduled runs; what is under way gets SETTLE_MS to finish. Still running then: stuck.
    log(`${clock()} faults over; settling`);
    for (const id of [scheduleIdOf(CLUSTER), healthScheduleIdOf(CLUSTER), drillScheduleIdOf(CLUSTER)])
      await client.schedule
        .getHandle(id)
        .pause('soak over')
        .catch(() => undefined);
    const capture = captureWorkflowId(CLUSTER);
    const running = async () => (await listRuns(client, `ExecutionStatus = 'Running'`)).filter((r) => r.workflowId !== capture);
    let stillRunning = await running();
    const settleEnd = Date.now() + SETTLE_MS;
    while (stillRunning.length && Date.now() < settleEnd) {
      await sleep(3000);
      stillRunning = await running();
    }
    for (const r of stillRunning)
      problems.push(`stuck: ${r.workflowId} (${r.runId}, ${r.type}) still running ${SETTLE_MS / 1000} s after the faults ended`);
    counts.stuck = stillRunning.length;

    // The writes stop; the capture must make everything etcd holds durable (else it is stuck too).
    await writes.stop();
    const last = (await status(etcd)).revision;
    const durable = await waitFor(
      `the chain to prove revision ${last}`,
      async () => ((d) => (d && compareRevisions(d, last) >= 0 ? d : undefined))(await durablePoint()),
      180_000,
      2000,
    ).catch(() => undefined);
    const finalPoint = durable ?? (await durablePoint());
    if (!durable) {
      counts.stuck++;
      problems.push(`stuck: the capture proves revision ${finalPoint ?? 'none'} 180 s after the writes stopped at ${last}`);
    }

    // Every acknowledged write up to what each epoch made durable is in the cluster's data now.
    const res = await unaryCall<RangeResponse>(etcd, 'Range', (md, opts, cb) =>
      etcd!.kv.Range({ key: Buffer.from(SOAK_PREFIX), rangeEnd: Buffer.from(SOAK_PREFIX.replace(/\/$/, '0')) }, md, opts, cb),
    );
    const held = new Map(res.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]));
    const through = new Map<number, Revision>();
    for (const f of faults) {
      const d = f.destruction;
      const t = d && newer(d.durableBefore, d.recovery?.restoredRevision);
      if (d && t) through.set(d.epoch, t);
      if (d && d.recovery && d.durableBefore && compareRevisions(d.recovery.restoredRevision, d.durableBefore) < 0)
        unexpected.push(
          `the recovery after the destruction at ${f.startedAt.toISOString()} restored revision ${d.recovery.restoredRevision}, older than the durable point ${d.durableBefore} before it`,
        );
    }
    const lastEpoch = writes.nextEpoch() - 1;
    if (finalPoint) through.set(lastEpoch, finalPoint);
    const lost = lostWrites(writes.acked, through, held);
    counts.lost_writes = lost.length;
    for (const l of lost.slice(0, 10))
      problems.push(`lost write: ${l.key}=${l.value} acknowledged at revision ${l.revision} (epoch ${l.epoch}, ${l.at})`);
    acked = writes.acked.length;
    log(
      `${clock()} writes: ${writes.acked.length} acknowledged, ${writes.failed} refused; ${held.size} in the cluster now; ${lost.length} lost`,
    );

    // Every backup in the bucket verifies.
    const backups = await verifyBackups(s3, rules, backupKey);
    unexpected.push(...backups.problems);
    log(`${clock()} backups: ${backups.verified} verified, ${backups.problems.length} bad`);

    // Every run: none failed outside a fault; recoveries only where the control plane was destroyed.
    const runs = await listRuns(client);
    counts.runs = runs.length;
    const windows = faults.map((f) => ({ kind: f.kind, startedAt: f.startedAt, endedAt: f.endedAt }));
    for (const r of failuresOutsideFaults(runs, windows, FAULT_GRACE_MS))
      unexpected.push(
        `failed outside any fault: ${r.workflowId} (${r.type}, ${r.status}, ${r.startTime.toISOString()}): ${(await failureOf(client, r)).slice(0, 300)}`,
      );
    const recoveries = runs.filter((r) => r.workflowId === recoveryWorkflowId(CLUSTER));
    counts.recoveries = recoveries.length;
    const answered = new Set(faults.flatMap((f) => (f.destruction?.recovery ? [f.destruction.recovery.runId] : [])));
    const healthy = recoveries.filter((r) => !answered.has(r.runId) && r.status === 'COMPLETED');
    counts.healthy_restored = healthy.length;
    for (const r of healthy) problems.push(`restored with no destruction: ${r.workflowId} (${r.runId}) at ${r.startTime.toISOString()}`);
    const failed = runs.filter((r) => ['FAILED', 'TIMED_OUT', 'TERMINATED'].includes(r.status));
    // Those a fault explains are not counted, but shown: a fault the engine should have ridden out shows up here.
    for (const r of failed)
      log(`${clock()} failed: ${r.workflowId} (${r.type}, ${r.startTime.toISOString()}): ${(await failureOf(client, r)).slice(0, 200)}`);
    const failedByFault = failed.length;
    log(
      `${clock()} runs: ${runs.length} (${failedByFault} failed, each during or just after a fault unless listed); recoveries ${recoveries.length} for ${faults.filter((f) => f.destruction).length} destructions`,
    );

    // No secret in any history or the worker's log.
    clearInterval(watchdog);
    await w.proc.stop();
    const leaks = await secretLeaks(client, runs, secrets, [
      { name: "the worker's log", text: await readFile(workerLog, 'utf8').catch(() => '') },
    ]);
    unexpected.push(...leaks.map((l) => `secret: ${l}`));
    // Nothing left behind by the runs: the worker's temp folder and the node's work dir are empty.
    const leftInTmp = await readdir(workerTmp, { recursive: true }).catch(() => []);
    const drillsDir = o.drills ? ['drills'] : [];
    for (const f of leftInTmp.filter((f) => !drillsDir.includes(f))) unexpected.push(`left behind on the worker: ${join(workerTmp, f)}`);
    const workDir = (await node.exec(['bash', '-c', 'cd /var/lib/lifeboat 2>/dev/null && find . -type f | sed "s|^\\./||" || true']))
      .split('\n')
      .filter(Boolean);
    // A recovery keeps its run folder by design: the manifests it moved aside and the snapshot it restored.
    const kept = faults.flatMap((f) =>
      f.destruction?.recovery?.manifestsMovedTo ? [dirname(f.destruction.recovery.manifestsMovedTo)] : [],
    );
    for (const f of workDir.filter((f) => !kept.some((k) => `/var/lib/lifeboat/${f}`.startsWith(`${k}/`))))
      unexpected.push(`left behind on the node: /var/lib/lifeboat/${f}`);
  } catch (err) {
    unexpected.push(`the soak itself failed: ${(err as Error).stack ?? String(err)}`);
  } finally {
    clearInterval(watchdog);
    await writes?.stop().catch(() => undefined);
    etcd?.close();
    for (const step of [
      () => prometheus?.stop(),
      () => alertmanager?.stop(),
      () => worker?.proc.stop(),
      () => cluster?.destroy(),
      async () => hook?.close(),
    ])
      await Promise.resolve(step()).catch(() => undefined);
    delete process.env.LIFEBOAT_SOAK_NOTIFY_URL;
    if (problems.length || unexpected.length) {
      // What a failing run needs to be understood: the faults, the writes, the logs.
      const report = await mkdtemp(join(tmpdir(), `lifeboat-soak-report-${o.seed}-`));
      await writeFile(join(report, 'faults.json'), JSON.stringify(faults, null, 1));
      for (const f of [writesFile, workerLog, join(env.dir, 'temporal.log')])
        await cp(f, join(report, f.split('/').at(-1)!)).catch(() => undefined);
      log(`kept for a look: ${report}`);
      tmpBefore.add(report.split('/').at(-1)!);
    }
    await env.close();
  }
  // Nothing left running or in the temp folder.
  for (const p of await processesUnder(env.dir)) unexpected.push(`left running: ${p}`);
  const netns = (await sh('ip', ['netns', 'list']).catch(() => '')).split('\n').filter((l) => l.startsWith(`lifeboat-${process.pid}-`));
  for (const n of netns) unexpected.push(`left behind: network namespace ${n}`);
  for (const f of (await readdir(tmpdir())).filter((f) => !tmpBefore.has(f) && f.startsWith('lifeboat-')))
    unexpected.push(`left behind: ${join(tmpdir(), f)}`);

  counts.unexpected_failures = unexpected.length;
  for (const p of [...unexpected, ...problems]) log(`problem: ${p}`);
  const line = soakLine(counts);
  return { counts, line, faults, problems: [...unexpected, ...problems], acked };
}
