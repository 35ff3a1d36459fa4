import { readFile } from 'node:fs/promises';
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

/**
 * The workflow's result; when it failed, an error that says why in the run's own words: every activity attempt the
 * history records (which worker, how it ended) and the last warnings of each worker's log. A test that kills workers
 * fails for reasons the workflow's last message alone does not show (was the retry lost, or did its worker die?).
 */
export async function resultExplained<T>(handle: WorkflowHandle<() => Promise<T>>, logFiles: string[]): Promise<T> {
  try {
    return await handle.result();
  } catch (err) {
    const events = (await handle.fetchHistory().catch(() => undefined))?.events ?? [];
    const names = new Map(
      events
        .filter((e) => e.activityTaskScheduledEventAttributes)
        .map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType?.name ?? '?']),
    );
    const at = (e: (typeof events)[number]) => new Date(Number(e.eventTime?.seconds ?? 0) * 1000).toISOString().slice(11, 19);
    const steps = events.flatMap((e) => {
      const started = e.activityTaskStartedEventAttributes;
      if (started)
        return [`${at(e)} ${names.get(String(started.scheduledEventId))} attempt ${started.attempt} started on ${started.identity}`];
      const ended = e.activityTaskTimedOutEventAttributes ?? e.activityTaskFailedEventAttributes;
      if (ended) return [`${at(e)} ${names.get(String(ended.scheduledEventId))} ended: ${ended.failure?.message ?? '?'}`];
      return [];
    });
    const logs = await Promise.all(
      logFiles.map(async (f) => {
        const lines = (await readFile(f, 'utf8').catch(() => '')).split('\n');
        const notable = lines.filter((l) => /"level":(40|50|60)|worker (started|stopped)|Uncaught|Error:/.test(l));
        return `${f}:\n${notable
          .slice(-15)
          .map((l) => `  ${l.slice(0, 400)}`)
          .join('\n')}`;
      }),
    );
    throw new Error(
      `${err instanceof Error ? `${err.message}: ${String((err as { cause?: unknown }).cause)}` : String(err)}\nactivities:\n  ${steps.join('\n  ')}\n${logs.join('\n')}`,
      { cause: err },
    );
  }
}
