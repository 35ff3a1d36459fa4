import { Counter, Gauge } from 'prom-client';
import { registry } from './registry';

/** Set by the recordDrill activity when a drill ends (the drill-<cluster> schedules, `lifeboat drill now`). */
export const drillMetrics = {
  lastSuccess: new Gauge({
    name: 'lifeboat_last_successful_drill_timestamp_seconds',
    help: "When the cluster's last successful restore drill finished (Unix time); also read from the bucket's drill reports by each health check.",
    labelNames: ['cluster'],
    registers: [registry],
  }),
  failed: new Counter({
    name: 'lifeboat_drills_failed_total',
    help: 'Restore drills that failed (the backup did not restore, or the drill could not run).',
    labelNames: ['cluster'],
    registers: [registry],
  }),
  duration: new Gauge({
    name: 'lifeboat_last_drill_duration_seconds',
    help: "Duration of the cluster's last finished restore drill in seconds.",
    labelNames: ['cluster'],
    registers: [registry],
  }),
  lastSuccessful: new Gauge({
    name: 'lifeboat_last_drill_success',
    help: "Whether the cluster's last finished restore drill passed (1) or failed (0).",
    labelNames: ['cluster'],
    registers: [registry],
  }),
};

export function recordDrillMetrics(cluster: string, passed: boolean, durationSeconds: number, finishedAt: Date): void {
  drillMetrics.duration.set({ cluster }, durationSeconds);
  drillMetrics.lastSuccessful.set({ cluster }, passed ? 1 : 0);
  if (passed) drillMetrics.lastSuccess.set({ cluster }, finishedAt.getTime() / 1000);
  else drillMetrics.failed.inc({ cluster });
}
