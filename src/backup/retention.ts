/**
 * Grandfather-father-son retention: which backups to keep and which to delete.
 *
 * Pure and deterministic: no I/O, no clock (the current time is an argument), no locale-dependent comparisons, and the
 * same answer whatever the order of the input. It is what the retention step applies and what `--dry-run` prints.
 *
 * A backup is kept when at least one of these holds (it may hold several; each adds a reason):
 *  1. `last N`: it is one of the `keepLast` newest backups, verified or not.
 *  2. `daily YYYY-MM-DD`: it is the newest verified backup of one of the `daily` most recent UTC calendar days that
 *     have a verified backup. Days without a verified backup are skipped, not counted (as restic's --keep-daily does).
 *  3. `weekly GGGG-Www`: the same per ISO-8601 week (UTC, weeks start on Monday, ISO week-numbering year, so
 *     2027-01-01 is in 2026-W53), over the `weekly` most recent such weeks.
 *  4. `monthly YYYY-MM`: the same per UTC calendar month, over the `monthly` most recent such months.
 *  5. `newest verified`: it is the newest verified backup. That one is never deleted, whatever the policy says.
 *  6. `inside the policy window`: it was created less than `max(1, daily) * 24h` before `now` (or after `now`, which
 *     means clock skew). Nothing that young is ever deleted: a fresh backup may still be waiting for verification, and
 *     a wrong policy or a burst of failed backups cannot wipe out the recent past. The window is tied to `daily`
 *     because that is the finest granularity the policy promises to keep; with `daily: 0` a day is still protected.
 *     A backup exactly `window` old is outside it.
 *  7. `unreadable timestamp: kept`: its `created` is not a strict ISO-8601 timestamp with a zone (`Z` or `±HH:MM`),
 *     or names an impossible date. We never delete what we do not understand; such a backup takes part in nothing
 *     else (it is not counted by keepLast and fills no bucket).
 *  8. `conflicting duplicate records: kept`: the same key was listed more than once with different data (another
 *     instant or another verified flag). Likewise kept and otherwise left out. Exact duplicates (the same instant,
 *     however written, and the same flag) are simply one backup.
 *
 * Unverified backups (`verified !== true`) survive only through rules 1 and 6 (or 7 and 8); they never fill a
 * daily, weekly or monthly bucket and are never the "newest verified".
 *
 * Order: "newest" is by creation instant; equal instants are broken by key, the greater key (code-unit order)
 * counting as newer. `keep` is listed newest first (unreadable and conflicting ones last, by key); `delete` oldest
 * first (the exact reverse order), so an interrupted deletion has removed the oldest backups only.
 */

export interface RetentionPolicy {
  /** At least 1. */
  keepLast: number;
  daily: number;
  weekly: number;
  monthly: number;
}

export interface BackupRecord {
  key: string;
  /** ISO-8601, UTC (an explicit offset is accepted and converted). */
  created: string;
  verified: boolean;
}

export interface RetentionDecision {
  /**
   * Newest first. `created` is always filled by decideRetention (the record's own string) so that the dry-run table
   * can interleave kept and deleted backups; it is optional so that hand-built decisions stay valid.
   */
  keep: { key: string; reasons: string[]; created?: string }[];
  /** Oldest first. */
  delete: { key: string; created: string }[];
}

export const REASON_UNREADABLE = 'unreadable timestamp: kept';
export const REASON_CONFLICT = 'conflicting duplicate records: kept';
export const REASON_NEWEST_VERIFIED = 'newest verified';
export const REASON_WINDOW = 'inside the policy window';

const DAY_MS = 24 * 3600_000;

const ISO_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|([+-])(\d{2}):(\d{2}))$/;

/**
 * Milliseconds since the epoch for a strict ISO-8601 timestamp with a zone, or undefined. Stricter than Date.parse on
 * purpose: no local-time strings (their meaning depends on the machine), no "March 7", no 2026-02-30 rolling over.
 */
export function parseTimestamp(s: unknown): number | undefined {
  if (typeof s !== 'string') return undefined;
  const m = ISO_TIMESTAMP.exec(s);
  if (!m) return undefined;
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number, number];
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const millis = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day); // not Date.UTC: it maps years 0-99 to 1900-1999
  if (d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) return undefined; // 2026-02-30, 2026-04-31...
  d.setUTCHours(hour, minute, second, millis);
  let ms = d.getTime();
  if (m[8] !== 'Z') {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    ms -= (m[9] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  return Number.isFinite(ms) ? ms : undefined;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** UTC calendar day: 2026-11-24. */
export function dayLabel(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`;
}

/** UTC calendar month: 2026-11. */
export function monthLabel(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}`;
}

/** ISO-8601 week in UTC, with the ISO week-numbering year: 2026-W47; 2027-01-01 -> 2026-W53; 2025-12-29 -> 2026-W01. */
export function isoWeekLabel(ms: number): string {
  const d = new Date(ms);
  const mondayBased = (d.getUTCDay() + 6) % 7; // Monday 0 ... Sunday 6
  // The Thursday of the same week decides the week-numbering year.
  const thursday = new Date(Date.UTC(2000, 0, 1));
  thursday.setUTCFullYear(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - mondayBased + 3);
  const weekYear = thursday.getUTCFullYear();
  const jan1 = new Date(Date.UTC(2000, 0, 1));
  jan1.setUTCFullYear(weekYear, 0, 1);
  const week = 1 + Math.floor(Math.round((thursday.getTime() - jan1.getTime()) / DAY_MS) / 7);
  return `${pad(weekYear, 4)}-W${pad(week, 2)}`;
}

function checkPolicy(policy: RetentionPolicy): void {
  const problems: string[] = [];
  for (const [name, min] of [
    ['keepLast', 1],
    ['daily', 0],
    ['weekly', 0],
    ['monthly', 0],
  ] as const) {
    const v = (policy as unknown as Record<string, unknown>)?.[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)
      problems.push(`${name} must be an integer >= ${min} (got ${String(v)})`);
  }
  // Refusing is the safe answer: a policy we cannot read must not delete anything.
  if (problems.length) throw new RangeError(`invalid retention policy: ${problems.join('; ')}`);
}

/** The greater code unit string, without locale rules (localeCompare is not deterministic across machines). */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Dated {
  key: string;
  created: string;
  ms: number;
  verified: boolean;
}

interface Odd {
  key: string;
  created: string;
  reasons: string[];
}

/** Newest first: later instant first, then greater key first. */
function newestFirst(a: Dated, b: Dated): number {
  return b.ms - a.ms || compareStrings(b.key, a.key);
}

/** Collapses duplicate keys; sets aside what cannot be dated or is contradictory. */
function normalize(backups: readonly BackupRecord[]): { dated: Dated[]; odd: Odd[] } {
  const byKey = new Map<string, { created: string; ms: number | undefined; verified: boolean }[]>();
  for (const b of backups) {
    const key = String(b.key);
    const copy = {
      created: typeof b.created === 'string' ? b.created : String(b.created),
      ms: parseTimestamp(b.created),
      verified: b.verified === true,
    };
    const copies = byKey.get(key);
    if (copies) copies.push(copy);
    else byKey.set(key, [copy]);
  }
  const dated: Dated[] = [];
  const odd: Odd[] = [];
  for (const [key, copies] of byKey) {
    const strings = [...new Set(copies.map((c) => c.created))].sort(compareStrings);
    const unreadable = copies.some((c) => c.ms === undefined);
    const signatures = new Set(copies.map((c) => `${c.ms ?? `?${c.created}`}|${c.verified}`));
    const conflicting = signatures.size > 1;
    if (unreadable || conflicting) {
      const readable = copies.filter((c) => c.ms !== undefined).sort((a, b) => b.ms! - a.ms! || compareStrings(a.created, b.created));
      const reasons = [...(unreadable ? [REASON_UNREADABLE] : []), ...(conflicting ? [REASON_CONFLICT] : [])];
      odd.push({ key, created: readable[0]?.created ?? strings[0], reasons });
    } else {
      dated.push({ key, created: strings[0], ms: copies[0].ms!, verified: copies[0].verified });
    }
  }
  dated.sort(newestFirst);
  odd.sort((a, b) => compareStrings(a.key, b.key));
  return { dated, odd };
}

/**
 * Decides which backups to keep and which to delete (see the rules at the top of this file). Throws a RangeError for
 * an invalid policy or an invalid `now` rather than guess.
 */
export function decideRetention(backups: readonly BackupRecord[], policy: RetentionPolicy, now: Date): RetentionDecision {
  checkPolicy(policy);
  const nowMs = now instanceof Date ? now.getTime() : Number.NaN;
  if (!Number.isFinite(nowMs)) throw new RangeError('decideRetention: now is not a valid date');

  const { dated, odd } = normalize(backups);
  const reasons = new Map<string, string[]>(dated.map((b) => [b.key, []]));
  const add = (key: string, reason: string) => reasons.get(key)!.push(reason);

  for (const b of dated.slice(0, policy.keepLast)) add(b.key, `last ${policy.keepLast}`);

  const verified = dated.filter((b) => b.verified);
  const buckets: [string, number, (ms: number) => string][] = [
    ['daily', policy.daily, dayLabel],
    ['weekly', policy.weekly, isoWeekLabel],
    ['monthly', policy.monthly, monthLabel],
  ];
  for (const [name, count, label] of buckets) {
    // Newest first, so the first backup met in a bucket is that bucket's newest; labels only ever go back in time.
    let filled = 0;
    let previous: string | undefined;
    for (const b of verified) {
      if (filled >= count) break;
      const l = label(b.ms);
      if (l === previous) continue;
      previous = l;
      filled++;
      add(b.key, `${name} ${l}`);
    }
  }

  if (verified[0]) add(verified[0].key, REASON_NEWEST_VERIFIED);

  const windowStart = nowMs - Math.max(1, policy.daily) * DAY_MS;
  for (const b of dated) if (b.ms > windowStart) add(b.key, REASON_WINDOW);

  const keep: RetentionDecision['keep'] = [];
  const del: RetentionDecision['delete'] = [];
  for (const b of dated) {
    const r = reasons.get(b.key)!;
    if (r.length) keep.push({ key: b.key, reasons: r, created: b.created });
    else del.push({ key: b.key, created: b.created });
  }
  for (const o of odd) keep.push({ key: o.key, reasons: o.reasons, created: o.created });
  del.reverse();
  return { keep, delete: del };
}

/**
 * The dry-run table: a header, then one line per backup, newest first (backups whose time cannot be read last, by
 * key): created, KEEP or DELETE, reasons, key.
 */
export function formatDecision(decision: RetentionDecision): string {
  const rows = [
    ...decision.keep.map((k) => ({ created: k.created ?? '?', action: 'KEEP', reasons: k.reasons.join(', ') || '-', key: k.key })),
    ...decision.delete.map((d) => ({ created: d.created, action: 'DELETE', reasons: '-', key: d.key })),
  ].map((r) => ({ ...r, ms: parseTimestamp(r.created) }));
  if (rows.length === 0) return 'no backups';
  rows.sort((a, b) => {
    if (a.ms === undefined || b.ms === undefined) return a.ms === b.ms ? compareStrings(a.key, b.key) : a.ms === undefined ? 1 : -1;
    return b.ms - a.ms || compareStrings(b.key, a.key);
  });
  const header = { created: 'CREATED', action: 'ACTION', reasons: 'REASONS', key: 'KEY' };
  const all = [header, ...rows];
  const w = {
    created: Math.max(...all.map((r) => r.created.length)),
    action: Math.max(...all.map((r) => r.action.length)),
    reasons: Math.max(...all.map((r) => r.reasons.length)),
  };
  const kept = decision.keep.length;
  const deleted = decision.delete.length;
  return [
    ...all.map((r) => `${r.created.padEnd(w.created)}  ${r.action.padEnd(w.action)}  ${r.reasons.padEnd(w.reasons)}  ${r.key}`),
    `${kept} kept, ${deleted} to delete`,
  ].join('\n');
}
