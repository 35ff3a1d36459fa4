import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

/** What a failed backup or recovery carries, as the failure's details, for the UI, the CLI and alerts to read. */
export interface StepFailureDetails {
  cluster: string;
  step: string;
}

/**
 * The workflow's failure when a step fails: the message names the cluster and the step ("cluster "c", step fetch: ..."),
 * the details carry them as data, and the type is the activity's own (CorruptSnapshot, NoSpace, ...) or `fallbackType`.
 * Activities say what went wrong and what to do; only here are the cluster and the step put in front (and `note`,
 * what the workflow did about it, behind).
 */
export function stepFailure(cluster: string, step: string, err: unknown, fallbackType: string, note?: string): ApplicationFailure {
  const cause =
    err instanceof ActivityFailure && err.cause instanceof ApplicationFailure
      ? err.cause
      : err instanceof ApplicationFailure
        ? err
        : undefined;
  const message = cause?.message ?? (err instanceof ActivityFailure && err.cause ? err.cause.message : (err as Error).message);
  const details: StepFailureDetails = { cluster, step };
  return ApplicationFailure.create({
    message: `cluster "${cluster}", step ${step}: ${message}${note ? `; ${note}` : ''}`,
    type: cause?.type ?? fallbackType,
    nonRetryable: true,
    details: [details],
    cause: err as Error,
  });
}

/** What failed, in the activity's own words (an ActivityFailure's message is only "Activity task failed"). */
export function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return (err as Error).message;
}
