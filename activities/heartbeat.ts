import { Context } from '@temporalio/activity';

/** The running activity's context, or undefined when a function is called directly (unit tests, CLI). */
export function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** Per running activity: how many of its transfers are under way, and the details its progress last heartbeated. */
interface Transfers {
  underWay: number;
  lastDetails?: unknown;
}
const transfersOf = new WeakMap<Context, Transfers>();

function transfers(ctx: Context): Transfers {
  let t = transfersOf.get(ctx);
  if (!t) transfersOf.set(ctx, (t = { underWay: 0 }));
  return t;
}

/** Heartbeats at most every `everyMs` (the SDK throttles too, but building details for every chunk is waste). */
export function throttledHeartbeat(everyMs = 2_000): (details: unknown) => void {
  const ctx = activityContext();
  let last = 0;
  return (details) => {
    const now = Date.now();
    if (!ctx || now - last < everyMs) return;
    last = now;
    transfers(ctx).lastDetails = details;
    ctx.heartbeat(details);
  };
}

/**
 * Marks a transfer under way: its bytes heartbeat (throttledHeartbeat), and `whilePreparing`'s timer stays quiet
 * meanwhile, so a transfer that stalls is still ended by the heartbeat timeout.
 */
export async function transferring<T>(body: () => Promise<T>): Promise<T> {
  const ctx = activityContext();
  if (!ctx) return body();
  const t = transfers(ctx);
  t.underWay++;
  try {
    return await body();
  } finally {
    t.underWay--;
  }
}

/**
 * Heartbeats on a timer while the activity prepares or finishes a transfer (an SSH login, round trips to list, probe
 * or check), and not while bytes flow (`transferring`). On a slow link those round trips take seconds each, and an
 * activity heartbeating only on bytes was timed out before its first byte at every attempt (issue 26, docs/soak.md).
 * The timer repeats the last progress details (or the previous attempt's): a retry reads the key of the upload it
 * must abort there (abortPreviousAttempt).
 */
export async function whilePreparing<T>(details: () => unknown, body: () => Promise<T>, everyMs = 5_000): Promise<T> {
  const ctx = activityContext();
  if (!ctx) return body();
  const t = transfers(ctx);
  const timer = setInterval(() => {
    if (t.underWay === 0) ctx.heartbeat(t.lastDetails ?? ctx.info.heartbeatDetails ?? details());
  }, everyMs);
  try {
    return await body();
  } finally {
    clearInterval(timer);
  }
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
