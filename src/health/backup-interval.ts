import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import { scheduleIdOf } from '../schedules/backup-schedules';

/**
 * The time between the cluster's next two scheduled backups (its `backup-<cluster>` Temporal Schedule), so the
 * "backup too old" rule can use each cluster's own cron instead of a fixed 6 h. Undefined without a schedule.
 */
export async function backupIntervalSeconds(client: Client, cluster: string, timeoutMs: number): Promise<number | undefined> {
  try {
    const d = await client.withDeadline(Date.now() + timeoutMs, () => client.schedule.getHandle(scheduleIdOf(cluster)).describe());
    // The average gap over the upcoming runs: each run carries its own jitter, which a single gap would report.
    const times = d.info.nextActionTimes.map((t) => t.getTime());
    return times.length >= 2 ? Math.round((times.at(-1)! - times[0]) / (times.length - 1) / 1000) : undefined;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}
