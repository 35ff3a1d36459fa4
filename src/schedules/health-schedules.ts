import { runMetadata } from '../temporal/run-metadata';
import { ScheduleOverlapPolicy, type ScheduleOptions } from '@temporalio/client';
import type { ClusterConfig } from '../config/schema';
import { durationMs } from './backup-schedules';
import { checkClusterHealth } from '../../workflows';

export const HEALTH_SCHEDULE_PREFIX = 'health-';
export const healthScheduleIdOf = (cluster: string) => `${HEALTH_SCHEDULE_PREFIX}${cluster}`;

/**
 * Where in each interval a cluster's checks start: the same second for the same cluster every time (a hash of its
 * name, whole seconds), different ones across a fleet. Intervals count from the epoch, so without it every cluster's
 * check would start on the same second: a hundred SSH sessions and bucket listings at once, then a quiet minute.
 */
export function spreadOffsetMs(cluster: string, everyMs: number): number {
  let h = 0x811c9dc5; // FNV-1a, 32 bits
  for (const b of Buffer.from(cluster)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  const seconds = Math.floor(everyMs / 1000);
  return seconds > 1 ? (h % seconds) * 1000 : 0;
}

/**
 * health-<cluster>: the checkClusterHealth workflow every `health.interval`. A check still running when the next is
 * due is not doubled (overlap SKIP), missed checks are not replayed beyond one interval (the server's minimum
 * catch-up window is 10 s), and a check that no worker picks up ends after a few intervals instead of piling up.
 */
export function healthScheduleFor(cluster: ClusterConfig, taskQueue: string): ScheduleOptions {
  const every = Math.max(1000, durationMs(cluster.health.interval));
  return {
    scheduleId: healthScheduleIdOf(cluster.name),
    spec: { intervals: [{ every, offset: spreadOffsetMs(cluster.name, every) }] },
    action: {
      type: 'startWorkflow',
      workflowType: checkClusterHealth,
      workflowId: healthScheduleIdOf(cluster.name),
      taskQueue,
      args: [{ cluster: cluster.name }],
      ...runMetadata({
        what: `health check of ${cluster.name}`,
        cluster: cluster.name,
        startedBy: `schedule ${healthScheduleIdOf(cluster.name)}`,
      }),
      workflowExecutionTimeout: Math.max(3 * every, 5 * 60_000),
    },
    policies: {
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: Math.max(10_000, Math.min(every, 5 * 60_000)),
      pauseOnFailure: false,
    },
    state: { note: 'managed by `lifeboat schedule sync`' },
  };
}
