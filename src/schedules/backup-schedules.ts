import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import type { ClusterConfig, Config } from '../config/schema';
import { HEALTH_SCHEDULE_PREFIX, healthScheduleFor, healthScheduleIdOf, spreadOffsetMs } from './health-schedules';
import { DRILL_SCHEDULE_PREFIX, drillScheduleFor, drillScheduleIdOf } from './drill-schedules';
import { backupCluster } from '../../workflows';
import { siteTaskQueue, taskQueueOf } from '../temporal/connection';
import { runMetadata } from '../temporal/run-metadata';
import { syncCaptures, type CaptureSync } from './capture-runs';

export const SCHEDULE_PREFIX = 'backup-';
export const scheduleIdOf = (cluster: string) => `${SCHEDULE_PREFIX}${cluster}`;

/** Go-style durations from config ("1h30m", "7d") in milliseconds. */
export function durationMs(text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  let total = 0;
  for (const m of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) total += Number(m[1]) * units[m[2]];
  return total;
}

/**
 * The cluster's cron expression with a second of its own (a hash of its name, spreadOffsetMs): "0 * * * *" fires at
 * 00:00:17 for one cluster and 00:00:42 for the next. Cron's minute is the user's, but the second is not said, and
 * Temporal reads it as 0: a fleet on the same cron would start every backup on the same second — a hundred snapshots,
 * SSH sessions and uploads at once — and with a short jitter nothing spreads them. Expressions that already name a
 * second (7 fields) and @-macros are left as written.
 */
export function spreadCron(cron: string, cluster: string): string {
  const fields = cron.trim().split(/\s+/);
  const zone = fields[0]?.includes('=') ? [fields.shift()!] : []; // CRON_TZ=...
  if (fields.some((f) => f.startsWith('@')) || (fields.length !== 5 && fields.length !== 6)) return cron;
  // Temporal's 7 fields: second, minute, hour, day of month, month, day of week, year.
  const second = spreadOffsetMs(cluster, 60_000) / 1000;
  return [...zone, String(second), ...fields, ...(fields.length === 5 ? ['*'] : [])].join(' ');
}

/** The schedule a cluster's config asks for: its cron specs (spread, above), jitter, overlap SKIP and an explicit catch-up window. */
export function scheduleFor(cluster: ClusterConfig, taskQueue: string): ScheduleOptions {
  return {
    scheduleId: scheduleIdOf(cluster.name),
    spec: {
      cronExpressions: cluster.backup.cron.map((c) => spreadCron(c, cluster.name)),
      timezone: cluster.backup.timezone,
      jitter: durationMs(cluster.backup.jitter),
    },
    action: {
      type: 'startWorkflow',
      workflowType: backupCluster,
      workflowId: scheduleIdOf(cluster.name),
      taskQueue,
      args: [{ cluster: cluster.name, reason: 'schedule' }],
      ...runMetadata({
        what: `scheduled backup of ${cluster.name}`,
        cluster: cluster.name,
        startedBy: `schedule ${scheduleIdOf(cluster.name)}`,
      }),
    },
    policies: {
      // A backup that runs long must not pile up behind itself.
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: durationMs(cluster.backup.catchupWindow),
      pauseOnFailure: false,
    },
    state: { note: 'managed by `lifeboat schedule sync`' },
  };
}

export interface SyncResult {
  created: string[];
  updated: string[];
  removed: string[];
  /** Schedules of clusters no longer in config, left in place because --prune was not given. */
  orphaned: string[];
  /**
   * Schedules named like ours that start their runs on another engine's task queue (another config sharing the
   * namespace): never pruned, never orphaned, listed so the overlap is visible.
   */
  foreign: { id: string; taskQueue: string }[];
  /** Continuous backups' capture-<cluster> runs (not schedules, reconciled alongside them). */
  captures: CaptureSync;
}

/**
 * Creates or updates the schedules of every configured cluster — backup-<cluster>, health-<cluster> and, with
 * drill.enabled, drill-<cluster> — idempotently, and starts or stops the capture-<cluster> runs of continuous backups.
 * Removes schedules of either kind whose cluster left the config only when asked to. The one sync entry point.
 */
export async function syncBackupSchedules(
  client: Client,
  config: Config,
  options: { prune?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<SyncResult> {
  const result: SyncResult = {
    created: [],
    updated: [],
    removed: [],
    orphaned: [],
    foreign: [],
    captures: { started: [], running: [], stopped: [] },
  };
  const taskQueue = taskQueueOf(config, options.env);
  const wanted = new Map<string, ScheduleOptions>();
  for (const c of config.clusters) {
    // Each cluster's runs start on its site's queue, where only that site's workers poll.
    const queue = siteTaskQueue(taskQueue, c.site);
    wanted.set(scheduleIdOf(c.name), scheduleFor(c, queue));
    wanted.set(healthScheduleIdOf(c.name), healthScheduleFor(c, queue));
    // Drills only where configured: a drill-<cluster> left from before `drill.enabled: false` is pruned like the others.
    if (config.drill.enabled) wanted.set(drillScheduleIdOf(c.name), drillScheduleFor(c, config.drill, queue));
  }
  for (const [id, options_] of wanted) {
    const handle = client.schedule.getHandle(id);
    try {
      await handle.describe();
      await handle.update((prev) => ({ ...prev, spec: options_.spec, action: options_.action, policies: options_.policies }));
      result.updated.push(id);
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      await client.schedule.create(options_);
      result.created.push(id);
    }
  }
  for await (const s of client.schedule.list()) {
    if (!isManagedSchedule(s.scheduleId) || wanted.has(s.scheduleId)) continue;
    // Only this engine's: another config in the same namespace (another team, a second install) keeps its schedules.
    const queue = await scheduleTaskQueue(client, s.scheduleId);
    if (queue === undefined) continue; // deleted meanwhile
    if (!isEngineQueue(taskQueue, queue)) {
      result.foreign.push({ id: s.scheduleId, taskQueue: queue });
      continue;
    }
    if (options.prune) {
      await client.schedule.getHandle(s.scheduleId).delete();
      result.removed.push(s.scheduleId);
    } else {
      result.orphaned.push(s.scheduleId);
    }
  }
  result.captures = await syncCaptures(client, config, taskQueue);
  return result;
}

/** Same function, by what it does now. */
export const syncSchedules = syncBackupSchedules;

/** The queue a schedule starts its runs on; undefined when it is gone. */
async function scheduleTaskQueue(client: Client, id: string): Promise<string | undefined> {
  try {
    return (await client.schedule.getHandle(id).describe()).action.taskQueue;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}

/**
 * Whether runs on `queue` are this engine's: its task queue or one of its sites' (`<queue>-<site>`, siteTaskQueue),
 * including a site no cluster names any more, whose schedules are exactly the ones to prune.
 */
export function isEngineQueue(taskQueue: string, queue: string): boolean {
  return queue === taskQueue || queue.startsWith(`${taskQueue}-`);
}

/** Schedules `lifeboat schedule sync` manages: backup-<cluster>, health-<cluster> and drill-<cluster>. */
export function isManagedSchedule(id: string): boolean {
  return id.startsWith(SCHEDULE_PREFIX) || id.startsWith(HEALTH_SCHEDULE_PREFIX) || id.startsWith(DRILL_SCHEDULE_PREFIX);
}
