import { temporal } from '@temporalio/proto';
import type { WorkflowHandle } from '@temporalio/client';
import { waitFor, type ManagedProcess } from '../../src/devserver/processes';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** Whether the workflow has `activity` started by a worker right now (its pending activity, as `describe` shows it). */
export async function activityRunning(handle: WorkflowHandle, activity: string): Promise<boolean> {
  return !!(await handle.describe()).raw.pendingActivities?.some(
    (a) => a.activityType?.name === activity && a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
  );
}

/**
 * A worker in its own process that a test kills with SIGKILL mid-activity and starts again: `killDuring` waits until
 * the workflow's pending activities show `activity` started and `alsoWhen` (the step's own progress on the node) holds,
 * then kills the worker and launches a new one.
 */
export class KillableWorker {
  current: ManagedProcess;
  constructor(private readonly launch: () => ManagedProcess) {
    this.current = launch();
  }

  async killDuring(handle: WorkflowHandle, activity: string, alsoWhen: () => Promise<boolean> = async () => true): Promise<void> {
    await waitFor(`activity ${activity} to run`, () => activityRunning(handle, activity), 180_000, 50);
    await waitFor(`activity ${activity} to be under way on the node`, alsoWhen, 60_000, 30);
    this.current.child.kill('SIGKILL');
    await this.current.exited;
    this.current = this.launch();
  }

  stop(): Promise<void> {
    return this.current.stop();
  }
}

/** The attempt each completed or failed `activity` ran with (the started event records the last attempt). */
export function attemptsOf(history: History, activity: string): number[] {
  const events = history.events ?? [];
  const scheduled = new Set(
    events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity).map((e) => String(e.eventId)),
  );
  return events
    .filter((e) => e.activityTaskStartedEventAttributes && scheduled.has(String(e.activityTaskStartedEventAttributes.scheduledEventId)))
    .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
}
