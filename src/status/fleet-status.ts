import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { ClusterConfig, Config } from '../config/schema';
import { continuousLag } from '../health/continuous-lag';
import { newestBackup } from '../health/newest-backup';
import type { HealthReport } from '../health/types';
import { describeLocation } from '../storage/s3-client';
import { CLUSTER, OUTCOME } from '../temporal/search-attributes';

/** One cluster's line of `lifeboat status`: what the bucket and Temporal say about it, and what is wrong. */
export interface ClusterStatus {
  cluster: string;
  backup?: { key: string; created: string; ageSeconds: number };
  /** When the newest passed restore drill finished. */
  lastPassedDrillAt?: string;
  /** Continuous backups (clusters with backup.continuous): the newest segment's age, an upper bound of the lag. */
  continuous?: { durableThrough?: string; at?: string; ageSeconds?: number; problem?: string };
  /** The newest finished health check (health-<cluster> schedule or `lifeboat check`). */
  health?: { outcome: string; at: string; workflowId: string };
  /** A recovery running now. */
  recovery?: { workflowId: string; since: string };
  problems: string[];
}

export interface FleetStatus {
  clusters: ClusterStatus[];
  /** Why Temporal could not be read (health and recoveries are then unknown); absent when it was. */
  temporalProblem?: string;
}

export interface FleetStatusOptions {
  loadKey: (keyId: string) => Promise<Buffer>;
  /** Absent: Temporal is not asked (unreachable); the bucket still is. */
  client?: Client;
  now: Date;
  /** Clusters read at once: a hundred clusters are a hundred bucket listings, not one at a time, nor all at once. */
  concurrency?: number;
  timeoutMs?: number;
}

/**
 * The fleet at a glance, from the two records that outlive any worker: each cluster's bucket (newest believed backup,
 * last passed drill, newest segment) and Temporal's visibility (newest health check, running recovery). Two
 * visibility queries for the whole fleet, not one per cluster, and the bucket reads a few clusters at a time.
 */
export async function fleetStatus(config: Config, o: FleetStatusOptions): Promise<FleetStatus> {
  const timeoutMs = o.timeoutMs ?? 15_000;
  let temporalProblem: string | undefined;
  let recoveries = new Map<string, ClusterStatus['recovery']>();
  let health = new Map<string, ClusterStatus['health']>();
  if (o.client) {
    try {
      [recoveries, health] = await Promise.all([runningRecoveries(o.client), newestHealthChecks(o.client, o.now)]);
    } catch (err) {
      temporalProblem = `cannot read runs from Temporal: ${(err as Error).message}`;
    }
  } else temporalProblem = 'Temporal not asked';

  const clusters: ClusterStatus[] = [];
  let next = 0;
  const work = async () => {
    for (let i = next++; i < config.clusters.length; i = next++) {
      const c = config.clusters[i];
      clusters[i] = await clusterStatus(c, o, timeoutMs, recoveries.get(c.name), health.get(c.name));
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 8, config.clusters.length) }, work));
  return { clusters, ...(temporalProblem ? { temporalProblem } : {}) };
}

async function clusterStatus(
  c: ClusterConfig,
  o: FleetStatusOptions,
  timeoutMs: number,
  recovery: ClusterStatus['recovery'],
  health: ClusterStatus['health'],
): Promise<ClusterStatus> {
  const problems: string[] = [];
  let backup: HealthReport['newestBackup'];
  try {
    backup = await newestBackup(c, o.loadKey, timeoutMs, o.now);
    if (!backup) problems.push('no backup');
  } catch (err) {
    problems.push(`bucket ${describeLocation(c.storage)}: ${(err as Error).message}`);
  }
  let continuous: ClusterStatus['continuous'];
  if (c.backup.continuous) {
    // No etcd revision from here: the newest segment's age, which is the lag unless the keyspace was quiet.
    const lag = await continuousLag(c, o.loadKey, undefined, o.now, timeoutMs).catch((err: Error) => ({ problem: err.message }));
    continuous = {
      ...('durableThrough' in lag ? { durableThrough: lag.durableThrough, at: lag.at, ageSeconds: lag.lagSeconds } : {}),
      ...(lag.problem ? { problem: lag.problem } : {}),
    };
    if (lag.problem) problems.push(`continuous: ${lag.problem}`);
  }
  if (health && health.outcome !== 'healthy') problems.push(`health: ${health.outcome} (${health.workflowId})`);
  return {
    cluster: c.name,
    ...(backup ? { backup: { key: backup.key, created: backup.created, ageSeconds: backup.ageSeconds } } : {}),
    ...(backup?.lastPassedDrillAt ? { lastPassedDrillAt: backup.lastPassedDrillAt } : {}),
    ...(continuous ? { continuous } : {}),
    ...(health ? { health } : {}),
    ...(recovery ? { recovery } : {}),
    problems,
  };
}

const HEALTH_WINDOW_MS = 30 * 60_000;

const clusterOfRun = (w: WorkflowExecutionInfo): string | undefined => w.typedSearchAttributes.get(CLUSTER);

async function runningRecoveries(client: Client): Promise<Map<string, ClusterStatus['recovery']>> {
  const found = new Map<string, ClusterStatus['recovery']>();
  for await (const w of client.workflow.list({ query: `LifeboatRun = 'recovery' AND ExecutionStatus = 'Running'` })) {
    const cluster = clusterOfRun(w);
    if (cluster && !found.has(cluster)) found.set(cluster, { workflowId: w.workflowId, since: w.startTime.toISOString() });
  }
  return found;
}

/**
 * Health checks that ended in the last half hour (the schedule runs one a minute by default: a few thousand runs for a
 * hundred clusters, a few pages), the newest per cluster. A cluster without one shows none: its schedule is not running.
 */
async function newestHealthChecks(client: Client, now: Date): Promise<Map<string, ClusterStatus['health']>> {
  const since = new Date(now.getTime() - HEALTH_WINDOW_MS).toISOString();
  const found = new Map<string, ClusterStatus['health']>();
  const query = `LifeboatRun = 'health' AND ExecutionStatus != 'Running' AND CloseTime > '${since}'`;
  for await (const w of client.workflow.list({ query })) {
    const cluster = clusterOfRun(w);
    const at = w.closeTime;
    const outcome = w.typedSearchAttributes.get(OUTCOME) ?? w.status.name.toLowerCase();
    const known = cluster ? found.get(cluster) : undefined;
    if (cluster && at && (!known || Date.parse(known.at) < at.getTime()))
      found.set(cluster, { outcome, at: at.toISOString(), workflowId: w.workflowId });
  }
  return found;
}
