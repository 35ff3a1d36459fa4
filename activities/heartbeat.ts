import { Context } from '@temporalio/activity';

/** The running activity's context, or undefined when a function is called directly (unit tests, CLI). */
export function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** Heartbeats at most every `everyMs` (the SDK throttles too, but building details for every chunk is waste). */
export function throttledHeartbeat(everyMs = 2_000): (details: unknown) => void {
  const ctx = activityContext();
  let last = 0;
  return (details) => {
    const now = Date.now();
    if (!ctx || now - last < everyMs) return;
    last = now;
    ctx.heartbeat(details);
  };
}

/** Aborts when the activity is cancelled (delivered through heartbeats) or the worker shuts down. */
export function cancellationSignal(): AbortSignal | undefined {
  return activityContext()?.cancellationSignal;
}

/** Heartbeats on a timer while a long single step runs (a remote command that prints nothing until it ends). */
export async function whileHeartbeating<T>(details: () => unknown, body: () => Promise<T>, everyMs = 5_000): Promise<T> {
  const ctx = activityContext();
  if (!ctx) return body();
  const timer = setInterval(() => ctx.heartbeat(details()), everyMs);
  try {
    return await body();
  } finally {
    clearInterval(timer);
  }
}
