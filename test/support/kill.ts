import { readFile } from 'node:fs/promises';
import { temporal } from '@temporalio/proto';
import type { WorkflowHandle } from '@temporalio/client';
import { hostname } from 'node:os';
import { waitFor, type ManagedProcess } from '../../src/devserver/processes';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** Whether the workflow has `activity` started by a worker right now (its pending activity, as `describe` shows it). */
export async function activityRunning(handle: WorkflowHandle, activity: string): Promise<boolean> {
  return !!(await startedActivity(handle, activity));
}

/** A worker process's identity as the SDK records it in histories (its default: pid@host). */
export const identityOf = (p: ManagedProcess) => `${p.child.pid}@${hostname()}`;

/** Where a killed step went on: the worker that ran its next attempt, and how long after the kill that attempt started. */
export interface Takeover {
  by: string;
  seconds: number;
}

/**
 * Workers in their own processes that a test kills with SIGKILL mid-activity: `killDuring` waits until the workflow's
 * pending activities show `activity` started and `alsoWhen` (the step's own progress on the node) holds, then kills
 * the worker running it. Alone, it is started again. With a standby (`workers: 2`) the other one must take the step
 * over once the killed attempt's heartbeat stops: `takeover` (read from the history when the run has ended) says who
 * ran the next attempt and how soon; a replacement is started once that attempt runs.
 */
export class KillableWorker {
  private readonly running: ManagedProcess[];
  constructor(
    private readonly launch: () => ManagedProcess,
    workers: 1 | 2 = 1,
  ) {
    this.running = Array.from({ length: workers }, () => launch());
  }

  async killDuring(
    handle: WorkflowHandle,
    activity: string,
    alsoWhen: () => Promise<boolean> = async () => true,
  ): Promise<{ takeover(): Promise<Takeover> } | undefined> {
    const first = await waitFor(`activity ${activity} to run`, () => startedActivity(handle, activity), 180_000, 50);
    await waitFor(`activity ${activity} to be under way on the node`, alsoWhen, 60_000, 30);
    const victim = this.running.find((p) => identityOf(p) === first.lastWorkerIdentity) ?? this.running[0];
    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    await victim.exited;
    this.running.splice(this.running.indexOf(victim), 1);
    if (this.running.length === 0) {
      this.running.push(this.launch());
      return undefined;
    }
    // The standby alone until the step's next attempt has started (or the step is over): only it can have taken it.
    // Not merely "no attempt running": between the heartbeat timeout and the retry's start the step is pending but
    // SCHEDULED, and a replacement launched then can win the retry (seen in CI: the kill during verifyApi).
    await waitFor(
      `another attempt of ${activity} to start`,
      async () => {
        const now = await pendingActivity(handle, activity);
        if (!now) return true; // the step is over
        return now.state === STARTED && (now.attempt ?? 1) > (first.attempt ?? 1);
      },
      120_000,
      200,
    );
    this.running.push(this.launch());
    return {
      takeover: async () => {
        const started = lastStarted(await handle.fetchHistory(), activity);
        return { by: started.identity, seconds: (started.at - killedAt) / 1000 };
      },
    };
  }

  /** The identities of the workers running now (after a kill with a standby: the survivor first). */
  identities(): string[] {
    return this.running.map(identityOf);
  }

  async stop(): Promise<void> {
    for (const p of this.running) await p.stop();
  }
}

const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

/** The workflow's pending `activity` in any state (scheduled, started, cancel requested); undefined when it is not pending. */
async function pendingActivity(handle: WorkflowHandle, activity: string) {
  return (await handle.describe()).raw.pendingActivities?.find((a) => a.activityType?.name === activity);
}

/** The workflow's pending `activity` while a worker runs it, as `describe` shows it; undefined otherwise. */
export async function startedActivity(handle: WorkflowHandle, activity: string) {
  const a = await pendingActivity(handle, activity);
  return a?.state === STARTED ? a : undefined;
}

/** The started events of `activity` in a history, in order (each records the last attempt of its scheduling). */
function startedEventsOf(history: History, activity: string) {
  const events = history.events ?? [];
  const scheduled = new Set(
    events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity).map((e) => String(e.eventId)),
  );
  return events.filter(
    (e) => e.activityTaskStartedEventAttributes && scheduled.has(String(e.activityTaskStartedEventAttributes.scheduledEventId)),
  );
}

/** The last recorded start of `activity` in a history: the worker that ran its final attempt, and when that attempt started. */
function lastStarted(history: History, activity: string): { identity: string; at: number } {
  const last = startedEventsOf(history, activity).pop();
  if (!last) throw new Error(`the history has no started ${activity}`);
  const t = last.eventTime!;
  return { identity: last.activityTaskStartedEventAttributes!.identity ?? '', at: Number(t.seconds) * 1000 + (t.nanos ?? 0) / 1e6 };
}

/** The attempt each completed or failed `activity` ran with (the started event records the last attempt). */
export function attemptsOf(history: History, activity: string): number[] {
  return startedEventsOf(history, activity).map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
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
