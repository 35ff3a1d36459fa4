import { rm } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { killStaticPod, startStaticPod, stopStaticPod, wipeControlPlane } from '../../sandbox/disaster';
import type { SandboxCluster } from '../../sandbox/cluster';
import type { Revision } from '../../src/etcd/revision';
import { recoveryWorkflowId, responseWorkflowId } from '../../workflows/run-ids';
import type { RecoverClusterResult } from '../../workflows/recover-cluster';
import type { RespondToAlertResult } from '../../workflows/respond-to-alert';
import type { BenchEnv } from '../env';
import type { Prng } from './prng';
import { listRuns } from './runs';
import type { WriteLoad } from './writer';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every fault the soak knows, in the words of its output (`--faults` takes these names). */
export const FAULT_KINDS = [
  'worker-kill',
  'minio-restart',
  'store-full',
  'network-drop',
  'temporal-restart',
  'etcd-restart',
  'static-pod-stop',
  'destroy',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
/** The faults that need the alert path (Prometheus, Alertmanager, an API server) to be answered. */
export const ALERT_FAULTS: readonly FaultKind[] = ['static-pod-stop', 'destroy'];

export interface Destruction {
  epoch: number;
  /** The newest point the bucket proved just before the destruction. */
  durableBefore?: Revision;
  recovery?: {
    workflowId: string;
    runId: string;
    seconds: number;
    restoredRevision: Revision;
    outcome: string;
    /** Where the recovery kept the manifests it replaced, on the node (kept by design, not left behind). */
    manifestsMovedTo?: string;
  };
}

export interface FaultRecord {
  kind: FaultKind;
  startedAt: Date;
  endedAt: Date;
  detail: string;
  /** What the fault should have led to and did not (a destruction not recovered within its target, ...). */
  problem?: string;
  destruction?: Destruction;
}

/** What the faults act on. */
export interface SoakWorld {
  env: BenchEnv;
  client: Client;
  cluster: SandboxCluster;
  worker: { crash(): Promise<void> };
  writes: WriteLoad;
  rng: Prng;
  /** The folder MinIO's tmpfs is mounted on (a file here fills the store). */
  storeDir: string;
  /** The newest point the continuous chain proves now (undefined: none yet, or the bucket cannot be read). */
  durablePoint(): Promise<Revision | undefined>;
  /** How long the alert path may take from a destruction to the verified API. */
  recoveryTargetSeconds: number;
}

/** The first run of `workflowId` started at or after `since` that has closed, waiting up to `timeoutMs`. */
async function closedRunSince(client: Client, workflowId: string, since: Date, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = (await listRuns(client, `WorkflowId = '${workflowId}'`).catch(() => [])).find((x) => x.startTime >= since);
    if (r?.closeTime) return r;
    await sleep(2000);
  }
  return undefined;
}

type Inject = (w: SoakWorld, record: FaultRecord) => Promise<void>;

const inject: Record<FaultKind, Inject> = {
  async 'worker-kill'(w, r) {
    await w.worker.crash();
    r.detail = 'worker SIGKILLed and started again';
  },
  async 'minio-restart'(w, r) {
    const down = w.rng.int(2, 20);
    await w.env.minio.stop();
    await sleep(down * 1000);
    await w.env.minio.restart();
    r.detail = `MinIO down ${down} s`;
  },
  async 'store-full'(w, r) {
    const hold = w.rng.int(10, 40);
    const filler = `${w.storeDir}/soak-filler`;
    const { stdout } = await run('df', ['-B1', '--output=avail', w.storeDir]);
    const avail = Number(stdout.trim().split('\n').at(-1));
    await run('fallocate', ['-l', String(Math.max(0, avail - 256 * 1024)), filler]);
    await sleep(hold * 1000);
    await rm(filler, { force: true });
    r.detail = `store full (writes refused) ${hold} s`;
  },
  async 'network-drop'(w, r) {
    const hold = w.rng.int(5, 25);
    const node = w.cluster.controlPlane;
    const link = `lbn${node.subnet}`;
    await node.exec(['ip', 'link', 'set', link, 'down']);
    try {
      await sleep(hold * 1000);
    } finally {
      await node.exec(['ip', 'link', 'set', link, 'up']);
    }
    r.detail = `node ${node.name}'s link down ${hold} s`;
  },
  async 'temporal-restart'(w, r) {
    const down = w.rng.int(1, 10);
    await w.env.restartTemporal(down * 1000);
    r.detail = `Temporal dev server down ${down} s (and its start)`;
  },
  async 'etcd-restart'(w, r) {
    await killStaticPod(w.cluster.controlPlane, 'etcd');
    r.detail = 'etcd SIGKILLed; its kubelet starts it again';
  },
  async 'static-pod-stop'(w, r) {
    const node = w.cluster.controlPlane;
    await stopStaticPod(node, 'kube-scheduler');
    try {
      const response = await closedRunSince(w.client, responseWorkflowId(w.cluster.name), r.startedAt, 180_000);
      if (!response) {
        r.problem = 'kube-scheduler stopped: no alert response within 180 s';
        return;
      }
      const result = (await w.client.workflow.getHandle(response.workflowId, response.runId).result()) as RespondToAlertResult;
      r.detail = `kube-scheduler stopped: the alert's response ended ${result.outcome} (${result.diagnosis?.cause ?? 'no diagnosis'})`;
      if (result.recovery) r.problem = `kube-scheduler stopped: the response started a recovery (${result.summary})`;
    } finally {
      await startStaticPod(node, 'kube-scheduler');
    }
  },
  async destroy(w, r) {
    await w.writes.pause();
    const durableBefore = await w.durablePoint();
    // Writes from the destruction to the recovery's end are an outage epoch: an emptied etcd acknowledges writes
    // that the restore then replaces, as it must (the data restored is the durable point, not the wreck).
    const epoch = w.writes.nextEpoch();
    const d: Destruction = { epoch: epoch - 1, durableBefore };
    r.destruction = d;
    const t0 = new Date();
    try {
      await wipeControlPlane(w.cluster.controlPlane);
    } finally {
      w.writes.resume();
    }
    try {
      await awaitRecovery(w, r, d, t0);
    } finally {
      await w.writes.pause();
      w.writes.nextEpoch();
      w.writes.resume();
    }
  },
};

/** The alert path's recovery of a destruction: the first recover-<cluster> run after it that restored. */
async function awaitRecovery(w: SoakWorld, r: FaultRecord, d: Destruction, t0: Date): Promise<void> {
  const name = w.cluster.name;
  const durableBefore = d.durableBefore;
  const deadline = t0.getTime() + w.recoveryTargetSeconds * 1000;
  // The alert path's recovery: the first recover-<cluster> run after the destruction that restored.
  for (;;) {
    const rec = (await listRuns(w.client, `WorkflowId = '${recoveryWorkflowId(name)}'`).catch(() => [])).find(
      (x) => x.startTime >= t0 && x.status === 'COMPLETED',
    );
    if (rec) {
      const result = (await w.client.workflow.getHandle(rec.workflowId, rec.runId).result()) as RecoverClusterResult;
      d.recovery = {
        workflowId: rec.workflowId,
        runId: rec.runId,
        seconds: Math.round((rec.closeTime!.getTime() - t0.getTime()) / 1000),
        restoredRevision: result.plan.snapshot.revision,
        outcome: result.outcome,
        manifestsMovedTo: result.manifestsMovedTo,
      };
      r.detail = `control plane destroyed (etcd wiped), durable point before: revision ${durableBefore ?? 'none'}; recovered in ${d.recovery.seconds} s to revision ${d.recovery.restoredRevision}`;
      if (d.recovery.seconds > w.recoveryTargetSeconds)
        r.problem = `the destruction was recovered in ${d.recovery.seconds} s, past its target of ${w.recoveryTargetSeconds} s`;
      return;
    }
    if (Date.now() > deadline + 120_000) {
      r.detail = `control plane destroyed (etcd wiped), durable point before: revision ${durableBefore ?? 'none'}`;
      r.problem = `the destruction was not recovered within ${w.recoveryTargetSeconds + 120} s`;
      return;
    }
    await sleep(2000);
  }
}

/** Injects one fault and records what happened; a fault that cannot be made is a problem of the run, not a crash. */
export async function injectFault(w: SoakWorld, kind: FaultKind): Promise<FaultRecord> {
  const record: FaultRecord = { kind, startedAt: new Date(), endedAt: new Date(), detail: '' };
  try {
    await inject[kind](w, record);
  } catch (err) {
    record.problem = `${kind}: the fault itself failed: ${(err as Error).message}`;
  }
  record.endedAt = new Date();
  return record;
}

/** The faults in seeded rounds: each round every kind once, in an order drawn from the seed. */
export function faultSequence(rng: Prng, kinds: readonly FaultKind[]): () => FaultKind {
  let round: FaultKind[] = [];
  return () => {
    if (!round.length) round = rng.shuffle(kinds);
    return round.shift()!;
  };
}
