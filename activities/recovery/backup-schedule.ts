import { ScheduleNotFoundError } from '@temporalio/client';
import { scheduleIdOf } from '../../src/schedules/backup-schedules';
import type { ActivityDeps } from '../deps';

/**
 * Pauses the cluster's backup schedule while its control plane is in flux (the engine's version of switching the
 * backup location to read-only). Returns whether this call paused it, so the resume step leaves alone a schedule an
 * operator had paused on purpose.
 */
export function pauseBackups(deps: ActivityDeps) {
  return async (input: { cluster: string; note: string }): Promise<{ paused: boolean; scheduleId: string; existed: boolean }> => {
    const scheduleId = scheduleIdOf(input.cluster);
    if (!deps.client) throw new Error('pauseBackups needs a Temporal client in the activity dependencies');
    const handle = deps.client.schedule.getHandle(scheduleId);
    try {
      const d = await handle.describe();
      if (d.state.paused) return { paused: false, scheduleId, existed: true };
      await handle.pause(input.note);
      return { paused: true, scheduleId, existed: true };
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) return { paused: false, scheduleId, existed: false };
      throw err;
    }
  };
}

export function resumeBackups(deps: ActivityDeps) {
  return async (input: { cluster: string; note: string }): Promise<void> => {
    if (!deps.client) throw new Error('resumeBackups needs a Temporal client in the activity dependencies');
    try {
      await deps.client.schedule.getHandle(scheduleIdOf(input.cluster)).unpause(input.note);
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  };
}
