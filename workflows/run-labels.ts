import { ApplicationFailure, isCancellation, patched, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import { CLUSTER, OUTCOME, RUN, type RunKind } from '../src/temporal/search-attributes';

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export interface RunLabels<T> {
  kind: RunKind;
  /** The raw input: its cluster is used only when it is a well-formed name (never echo hostile strings into the index). */
  input: unknown;
  /** One line for people (the memo's `summary`), or undefined when the input is invalid. */
  summary: () => string | undefined;
  outcome: (result: T) => string;
}

/**
 * Runs a workflow body with its search attributes set: LifeboatCluster and LifeboatRun before anything else (so runs
 * started from the UI's form are labelled like every other), LifeboatOutcome when it ends, whichever way. The memo
 * carries a one-line summary. The attributes must be registered (`lifeboat temporal setup`): an unregistered one fails
 * the workflow task, and the run waits until they are.
 *
 * Recorded histories from before the labels have no upsert commands: behind patched() they replay unchanged.
 */
export async function labelled<T>(labels: RunLabels<T>, body: () => Promise<T>): Promise<T> {
  if (!patched('lifeboat-search-attributes')) return body();
  const cluster = clusterOf(labels.input);
  const summary = labels.summary();
  upsertSearchAttributes([{ key: RUN, value: labels.kind }, ...(cluster ? [{ key: CLUSTER, value: cluster }] : [])]);
  upsertMemo({ summary: summary ?? `${labels.kind}: invalid input, refused before any step` });
  try {
    const result = await body();
    upsertSearchAttributes([{ key: OUTCOME, value: labels.outcome(result) }]);
    return result;
  } catch (err) {
    upsertSearchAttributes([{ key: OUTCOME, value: failureOutcome(err) }]);
    throw err;
  }
}

/** The input's cluster when it is a well-formed name. */
export function clusterOf(input: unknown): string | undefined {
  const cluster = input && typeof input === 'object' ? (input as { cluster?: unknown }).cluster : undefined;
  return typeof cluster === 'string' && NAME.test(cluster) ? cluster : undefined;
}

function failureOutcome(err: unknown): string {
  if (isCancellation(err)) return 'cancelled';
  if (err instanceof ApplicationFailure && err.type === 'InvalidInput') return 'invalid-input';
  if (err instanceof ApplicationFailure && err.type === 'ApprovalTimeout') return 'not-approved';
  return 'failed';
}
