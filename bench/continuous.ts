import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandboxCluster } from '../sandbox/cluster';
import { fillEtcd } from '../sandbox/fill';
import { createEtcdClient, unaryCall, type EtcdClient } from '../src/etcd/grpc/client';
import type { TxnResponse } from '../src/etcd/grpc/proto';
import { status } from '../src/etcd/grpc/status';
import { compareRevisions } from '../src/etcd/revision';
import { lastRevisionOfKey } from '../src/continuous/segment';
import { keyspaceAt, restoreStoredSnapshot } from '../test/support/pitr';
import { backupCluster, recoverCluster } from '../workflows';
import { benchEnv, startWorkerProcess, timed, type BenchEnv } from './env';
import { startCapture, stopCapture } from './capture-run';

/**
 * Continuous backups under a realistic write load (issue 22): Kubernetes-shaped objects written straight to etcd
 * (creates, updates, deletes) at >= 200 writes/s for 2 minutes on a sandbox control plane, the engine's worker (its
 * own process) capturing them. RPO per write: from etcd's acknowledgement to the moment the bench first sees a segment
 * holding its revision in the bucket (listed every 100 ms, so at most that much late). Then a point-in-time recovery
 * to a revision in the middle of the load, compared key by key with etcd's own view at that revision, against a
 * recovery from a full backup taken at the next revision. Prints figures, last line the summary; asserts nothing.
 */
const WRITES_PER_SECOND = Number(process.env.BENCH_WRITES_PER_SECOND ?? 250);
const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 120);
const SEGMENT_SECONDS = Number(process.env.BENCH_SEGMENT_SECONDS ?? 3);
const CLUSTER = 'cont';
const TQ = 'cont';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A ConfigMap as kube-apiserver stores it (JSON here; protobuf there): ~1.5 KiB, mostly labels, annotations, data. */
function configMap(name: string, generation: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      kind: 'ConfigMap',
      apiVersion: 'v1',
      metadata: {
        name,
        namespace: 'bench',
        uid: randomBytes(16).toString('hex'),
        labels: { app: 'bench', tier: ['web', 'api', 'db'][generation % 3], generation: String(generation) },
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': randomBytes(300).toString('base64') },
        managedFields: [{ manager: 'kubectl', operation: 'Apply', apiVersion: 'v1', time: new Date().toISOString() }],
      },
      data: { 'config.yaml': randomBytes(600).toString('base64'), generation: String(generation) },
    }),
  );
}

interface Write {
  revision: string;
  ackedAt: number;
  durableAt?: number;
}

async function load(etcd: EtcdClient, seconds: number, writes: Write[], pause: () => Promise<void>): Promise<void> {
  const live: string[] = [];
  let n = 0;
  const started = Date.now();
  const txn = (op: Parameters<typeof etcd.kv.Txn>[0]['success'][number]) =>
    unaryCall<TxnResponse>(etcd, 'Txn', (md, o, cb) => etcd.kv.Txn({ success: [op] }, md, o, cb));
  // Paced: each write at its slot, several in flight, so a slow moment is caught up rather than lowering the rate.
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; Date.now() - started < seconds * 1000; i++) {
    const due = started + (i * 1000) / WRITES_PER_SECOND;
    if (due > Date.now()) await sleep(due - Date.now());
    if (i === Math.floor((seconds * WRITES_PER_SECOND) / 2)) {
      await Promise.all(inFlight);
      await pause();
    }
    const roll = i % 10;
    let op;
    if (roll < 5 || live.length < 50) {
      const name = `cm-${n++}`;
      live.push(name);
      op = { requestPut: { key: Buffer.from(`/registry/configmaps/bench/${name}`), value: configMap(name, 0) } };
    } else if (roll < 8) {
      const name = live[(i * 7919) % live.length];
      op = { requestPut: { key: Buffer.from(`/registry/configmaps/bench/${name}`), value: configMap(name, i) } };
    } else {
      const [name] = live.splice((i * 104729) % live.length, 1);
      op = { requestDeleteRange: { key: Buffer.from(`/registry/configmaps/bench/${name}`) } };
    }
    const p = txn(op).then((res) => {
      writes.push({ revision: res.header!.revision, ackedAt: Date.now() });
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size > 32) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

/** The newest revision any segment in the bucket holds, listed every 100 ms; each write is durable from then on. */
function watchDurability(s3: S3Client, prefix: string, writes: Write[]): { stop(): Promise<number> } {
  let stopped = false;
  let segments = 0;
  const done = (async () => {
    while (!stopped) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: 'bench', Prefix: prefix, ContinuationToken: token }));
        keys.push(...(page.Contents ?? []).map((o) => o.Key!));
        token = page.NextContinuationToken;
      } while (token);
      const now = Date.now();
      segments = keys.length;
      const newest = keys
        .map(lastRevisionOfKey)
        .filter((r): r is string => Boolean(r))
        .reduce((a, b) => (compareRevisions(a, b) >= 0 ? a : b), '0');
      for (const w of writes) if (w.durableAt === undefined && compareRevisions(w.revision, newest) <= 0) w.durableAt = now;
      await sleep(100);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await done;
      return segments;
    },
  };
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

async function main(): Promise<void> {
  const env: BenchEnv = await benchEnv();
  const cluster = await createSandboxCluster({
    name: CLUSTER,
    etcdLine: '3.6',
    withApiserver: true,
    storage: { bucket: 'bench', prefix: TQ, region: 'us-east-1', forcePathStyle: true },
    dir: join(env.dir, 'cluster'),
  });
  const node = cluster.controlPlane;
  const keyPath = join(env.dir, 'bench.key');
  await writeFile(keyPath, randomBytes(32).toString('base64'));
  const pki = (f: string) => readFile(node.path(`/etc/kubernetes/pki/etcd/${f}`));
  const etcd = createEtcdClient({
    endpoint: `${node.ip}:2379`,
    tls: { ca: await pki('ca.crt'), cert: await pki('healthcheck-client.crt'), key: await pki('healthcheck-client.key') },
  });
  const s3 = new S3Client({
    region: env.minio.region,
    endpoint: env.minio.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: env.minio.accessKeyId, secretAccessKey: env.minio.secretAccessKey },
  });
  const w = await startWorkerProcess(
    env,
    cluster,
    { encryptionKey: 'bench', compression: 'zstd', continuous: { segmentSeconds: SEGMENT_SECONDS } },
    keyPath,
    TQ,
    {},
    { config: { drill: { scratchDir: join(env.dir, 'scratch'), etcd: { '3.6': cluster.binaries.etcd['3.6'] } } } },
  );
  try {
    // A base with some bulk (20 MiB), as a real cluster has, then the capture from it.
    await fillEtcd(cluster, 200, 100 * 1024, { prefix: '/registry/bench-fill/' });
    const base = await env.client.workflow.execute(backupCluster, {
      taskQueue: TQ,
      workflowId: 'bench-cont-base',
      args: [{ cluster: CLUSTER }],
    });
    await startCapture(env.client, TQ, CLUSTER);
    const writes: Write[] = [];
    const durability = watchDurability(s3, `${TQ}/${CLUSTER}/chains/`, writes);
    let full: { manifestKey: string; revision: string } | undefined;
    let target = '';
    // The worker's peak per phase (VmHWM reset at each boundary): capture alone, a full backup under load, the
    // rebuild of a point, so a peak is pinned to what made it.
    const peaks: Record<string, number> = {};
    const phaseEnds = async (phase: string) => {
      peaks[phase] = await w.peakRssMiB();
      await w.resetPeakRss();
    };
    await phaseEnds('base backup');
    const loadRun = await timed(() =>
      load(etcd, LOAD_SECONDS, writes, async () => {
        // Half way: the point to restore to, and a full backup one revision later to compare the recovery with.
        await phaseEnds('capture (first half)');
        target = (await status(etcd)).revision;
        await unaryCall<TxnResponse>(etcd, 'Txn', (md, o, cb) =>
          etcd.kv.Txn({ success: [{ requestPut: { key: Buffer.from('/registry/bench-marker'), value: Buffer.from('x') } }] }, md, o, cb),
        );
        const b = await env.client.workflow.execute(backupCluster, {
          taskQueue: TQ,
          workflowId: 'bench-cont-full',
          args: [{ cluster: CLUSTER }],
        });
        full = { manifestKey: b.manifestKey, revision: b.revision };
        await phaseEnds('full backup under load');
      }),
    );
    const last = writes.reduce((a, x) => (compareRevisions(a, x.revision) >= 0 ? a : x.revision), '0');
    for (let i = 0; i < 600 && writes.some((x) => x.durableAt === undefined); i++) await sleep(100);
    const segments = await durability.stop();
    const rpos = writes.filter((x) => x.durableAt !== undefined).map((x) => (x.durableAt! - x.ackedAt) / 1000);
    const view = await keyspaceAt(etcd, target);
    await phaseEnds('capture (second half)');
    await stopCapture(env.client, CLUSTER);
    console.log(
      `load: ${writes.length} writes in ${loadRun.seconds.toFixed(1)} s (${(writes.length / loadRun.seconds).toFixed(0)}/s), last revision ${last}, ${writes.length - rpos.length} never seen durable; base ${base.manifestKey}, full ${full?.manifestKey}, point ${target}`,
    );

    const pitr = await timed(async () => {
      const h = await env.client.workflow.start(recoverCluster, {
        taskQueue: TQ,
        workflowId: `recover-${CLUSTER}`,
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        args: [{ cluster: CLUSTER, at: target, approval: 'auto', controlPlaneTimeoutSeconds: 300 }],
      });
      return h.result();
    });
    await phaseEnds('point-in-time recovery');
    const built = pitr.value.point?.built;
    console.log(
      `point rebuilt: ${built?.replay?.revisions} revisions (${built?.replay?.events} events) from ${built?.replay?.segments} segments; ${Object.entries(
        built?.seconds ?? {},
      )
        .map(([k, v]) => `${k} ${v} s`)
        .join(', ')}`,
    );
    const pointKey = built?.manifestKey;
    let exact = false;
    if (pointKey) {
      const restored = await restoreStoredSnapshot(
        s3,
        'bench',
        pointKey,
        Buffer.from((await readFile(keyPath, 'utf8')).trim(), 'base64'),
        cluster.binaries.etcd['3.6'],
      );
      try {
        exact = JSON.stringify(await keyspaceAt(restored.client)) === JSON.stringify(view) && restored.revision === target;
      } finally {
        await restored.stop();
      }
    }
    const fullRun = await timed(async () => {
      const h = await env.client.workflow.start(recoverCluster, {
        taskQueue: TQ,
        workflowId: `recover-${CLUSTER}`,
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        args: [
          { cluster: CLUSTER, snapshot: full!.manifestKey, approval: 'auto', overrideCooldown: true, controlPlaneTimeoutSeconds: 300 },
        ],
      });
      return h.result();
    });
    for (const [name, r] of [
      ['point-in-time', pitr.value],
      ['full', fullRun.value],
    ] as const) {
      console.log(`${name} recovery:`);
      for (const s of r.steps) {
        const secs = s.startedAt && s.endedAt ? (Date.parse(s.endedAt) - Date.parse(s.startedAt)) / 1000 : 0;
        console.log(`  ${s.step.padEnd(20)} ${secs.toFixed(1).padStart(6)} s  ${s.status}`);
      }
    }
    await phaseEnds('full recovery');
    console.log(
      `worker peak RSS by phase: ${Object.entries(peaks)
        .map(([k, v]) => `${k} ${v.toFixed(0)} MiB`)
        .join(', ')}`,
    );
    const peak = Math.max(...Object.values(peaks));
    console.log(
      `continuous: rpo_p50_s=${percentile(rpos, 50).toFixed(2)} rpo_p99_s=${percentile(rpos, 99).toFixed(2)} writes=${writes.length} segments=${segments} pitr_exact=${exact ? 'yes' : 'no'} pitr_restore_s=${pitr.seconds.toFixed(1)} full_restore_s=${fullRun.seconds.toFixed(1)} peak_rss_mib=${peak.toFixed(0)} segment_seconds=${SEGMENT_SECONDS}`,
    );
  } finally {
    etcd.close();
    s3.destroy();
    await w.proc.stop();
    await cluster.destroy();
    await env.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
