import { ScheduleOverlapPolicy, type ScheduleOptions } from '@temporalio/client';
import type { ClusterConfig, DrillConfig } from '../config/schema';
import { durationMs } from './backup-schedules';
import { drillRestore } from '../../workflows';

export const DRILL_SCHEDULE_PREFIX = 'drill-';
export const drillScheduleIdOf = (cluster: string) => `${DRILL_SCHEDULE_PREFIX}${cluster}`;

/**
 * drill-<cluster>: a restore drill of the newest usable backup on `drill.cron`. A drill still running when the next
 * is due is not doubled (overlap SKIP); a missed one is not replayed (the next is as good).
 */
export function drillScheduleFor(cluster: ClusterConfig, drill: DrillConfig, taskQueue: string): ScheduleOptions {
  return {
    scheduleId: drillScheduleIdOf(cluster.name),
    spec: { cronExpressions: drill.cron, timezone: drill.timezone, jitter: durationMs(drill.jitter) },
    action: {
      type: 'startWorkflow',
      workflowType: drillRestore,
      workflowId: drillScheduleIdOf(cluster.name),
      taskQueue,
      args: [{ cluster: cluster.name, snapshot: 'latest', reason: 'schedule' }],
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: 60_000, pauseOnFailure: false },
    state: { note: 'managed by `lifeboat schedule sync`' },
  };
}
