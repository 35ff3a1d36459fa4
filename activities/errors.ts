import { ApplicationFailure } from '@temporalio/common';
import { ConfigError } from '../src/config/load';
import { MissingSecretError } from '../src/secrets';
import { ManifestError } from '../src/backup/manifest';
import { HostKeyMismatchError } from '../src/ssh/host-key';
import { SshAuthError } from '../src/ssh/connect';

/**
 * Failures that retrying cannot fix become non-retryable, typed ApplicationFailures, so a workflow fails fast with a
 * message naming the field and the fix instead of retrying for hours. Anything else is rethrown for Temporal to retry.
 */
export function classify(err: unknown): never {
  if (err instanceof ApplicationFailure) throw err;
  const e = err as Error;
  const types: [new (...args: never[]) => Error, string][] = [
    [HostKeyMismatchError, 'HostKeyMismatch'],
    [SshAuthError, 'SshAuthRefused'],
    [ConfigError, 'InvalidConfig'],
    [MissingSecretError, 'MissingSecret'],
    [ManifestError, 'CorruptManifest'],
  ];
  for (const [cls, type] of types) {
    if (err instanceof cls) throw ApplicationFailure.nonRetryable(e.message, type);
  }
  throw err;
}

/** Runs an activity body with classification applied to whatever it throws. */
export async function classified<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    classify(err);
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any activity signature
type AnyActivity = (...args: any[]) => Promise<unknown>;

/** The activities, each wrapped by classified: the one place where failures are classified. */
export function classifiedAll<T extends Record<string, AnyActivity>>(activities: T): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [name, (...args: unknown[]) => classified(() => fn(...args))]),
  ) as T;
}
