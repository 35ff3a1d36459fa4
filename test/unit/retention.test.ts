import {
  decideRetention,
  formatDecision,
  type BackupRecord,
  type RetentionDecision,
  type RetentionPolicy,
} from '../../src/backup/retention';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

function b(key: string, created: string, verified = true): BackupRecord {
  return { key, created, verified };
}

function keptKeys(d: RetentionDecision): string[] {
  return d.keep.map((k) => k.key);
}

function reasonsOf(d: RetentionDecision, key: string): string[] | undefined {
  return d.keep.find((k) => k.key === key)?.reasons;
}

/** Deterministic shuffle (mulberry32), so a failure reproduces. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * An independent, deliberately plain statement of the rules, for records that all have readable, distinct times.
 * Weeks are grouped by the date of their Monday, which needs no ISO week numbering at all.
 */
function referenceKept(backups: BackupRecord[], p: RetentionPolicy, now: Date): Set<string> {
  const recs = backups.map((r) => ({ ...r, ms: new Date(r.created).getTime() })).sort((x, y) => y.ms - x.ms);
  const kept = new Set<string>();
  recs.slice(0, p.keepLast).forEach((r) => kept.add(r.key));
  const verified = recs.filter((r) => r.verified);
  if (verified.length) kept.add(verified[0].key);
  const bucketed = (count: number, bucketOf: (ms: number) => string) => {
    const newestPerBucket = new Map<string, string>(); // insertion order = newest bucket first
    for (const r of verified) if (!newestPerBucket.has(bucketOf(r.ms))) newestPerBucket.set(bucketOf(r.ms), r.key);
    [...newestPerBucket.values()].slice(0, count).forEach((k) => kept.add(k));
  };
  bucketed(p.daily, (ms) => new Date(ms).toISOString().slice(0, 10));
  bucketed(p.weekly, (ms) => {
    const d = new Date(ms);
    const daysSinceMonday = (d.getUTCDay() + 6) % 7;
    return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - daysSinceMonday)).toISOString().slice(0, 10);
  });
  bucketed(p.monthly, (ms) => new Date(ms).toISOString().slice(0, 7));
  const window = Math.max(1, p.daily) * DAY;
  for (const r of recs) if (now.getTime() - r.ms < window) kept.add(r.key);
  return kept;
}

/**
 * One backup every 6 hours for 120 days (2026-07-28 .. 2026-11-24), except a 4-day outage (no backups at all), with
 * every 5th backup unverified and two whole days where verification failed.
 */
function syntheticHistory(): BackupRecord[] {
  const start = Date.UTC(2026, 6, 28, 0, 0, 0);
  const out: BackupRecord[] = [];
  for (let i = 0; i < 120 * 4; i++) {
    const ms = start + i * 6 * HOUR;
    const created = new Date(ms).toISOString();
    const day = created.slice(0, 10);
    if (day >= '2026-10-10' && day <= '2026-10-13') continue; // outage
    const unverifiedDay = day === '2026-11-20' || day === '2026-11-12';
    out.push({
      key: `prod/etcd/${created.replace(/[-:]/g, '').replace('.000', '')}-rev${1000 + i}.manifest.json`,
      created,
      verified: i % 5 !== 2 && !unverifiedDay,
    });
  }
  return out;
}

const NOW = new Date('2026-11-25T03:00:00Z');

describe('decideRetention on a synthetic history', () => {
  const history = syntheticHistory();
  const policies: RetentionPolicy[] = [
    { keepLast: 5, daily: 7, weekly: 4, monthly: 6 },
    { keepLast: 1, daily: 0, weekly: 0, monthly: 0 },
    { keepLast: 3, daily: 14, weekly: 8, monthly: 3 },
    { keepLast: 10, daily: 2, weekly: 20, monthly: 2 },
    { keepLast: 2, daily: 40, weekly: 0, monthly: 12 },
  ];

  it('has the shape the test means', () => {
    expect(history.length).toBe(464);
    expect(history.filter((r) => !r.verified).length).toBeGreaterThan(90);
  });

  it.each(policies)('keeps exactly the expected set for %o', (policy) => {
    const decision = decideRetention(history, policy, NOW);
    const expected = referenceKept(history, policy, NOW);
    expect(new Set(keptKeys(decision))).toEqual(expected);
    expect(decision.keep.length).toBe(expected.size);
    expect(decision.keep.length + decision.delete.length).toBe(history.length);
    expect(decision.delete.map((d) => d.key).filter((k) => expected.has(k))).toEqual([]);
    // delete: oldest first; keep: newest first
    const deleteTimes = decision.delete.map((d) => Date.parse(d.created));
    expect(deleteTimes).toEqual([...deleteTimes].sort((x, y) => x - y));
    const keepTimes = decision.keep.map((k) => Date.parse(k.created!));
    expect(keepTimes).toEqual([...keepTimes].sort((x, y) => y - x));
  });

  it('gives the reasons of the default policy', () => {
    const policy = { keepLast: 5, daily: 7, weekly: 4, monthly: 6 };
    const decision = decideRetention(history, policy, NOW);
    const all = decision.keep.flatMap((k) => k.reasons);
    const count = (prefix: string) => all.filter((r) => r.startsWith(prefix)).length;
    expect(count('last 5')).toBe(5);
    expect(count('daily ')).toBe(7);
    expect(count('weekly ')).toBe(4);
    // The history spans July..November: only 5 months exist, so monthly 6 keeps 5.
    expect(all.filter((r) => r.startsWith('monthly ')).sort()).toEqual([
      'monthly 2026-07',
      'monthly 2026-08',
      'monthly 2026-09',
      'monthly 2026-10',
      'monthly 2026-11',
    ]);
    expect(count('newest verified')).toBe(1);
    // 2026-11-20 had no verified backup: it is skipped, so daily 7 reaches back to 2026-11-17.
    expect(all.filter((r) => r.startsWith('daily ')).sort()).toEqual([
      'daily 2026-11-17',
      'daily 2026-11-18',
      'daily 2026-11-19',
      'daily 2026-11-21',
      'daily 2026-11-22',
      'daily 2026-11-23',
      'daily 2026-11-24',
    ]);
    expect(all.filter((r) => r.startsWith('weekly ')).sort()).toEqual([
      'weekly 2026-W45',
      'weekly 2026-W46',
      'weekly 2026-W47',
      'weekly 2026-W48',
    ]);
    // The window is 7 days: everything since 2026-11-18T03:00Z exclusive (27 backups of 6h each) is kept for it.
    expect(count('inside the policy window')).toBe(27);
    // The newest backup (2026-11-24T18:00Z: 119 days after the start, i = 119 * 4 + 3 = 479, 479 % 5 = 4) is verified.
    expect(reasonsOf(decision, 'prod/etcd/20261124T180000Z-rev1479.manifest.json')).toEqual([
      'last 5',
      'daily 2026-11-24',
      'weekly 2026-W48',
      'monthly 2026-11',
      'newest verified',
      'inside the policy window',
    ]);
    // The last backup of July (i = 15, verified) is July's monthly one and nothing else.
    expect(reasonsOf(decision, 'prod/etcd/20260731T180000Z-rev1015.manifest.json')).toEqual(['monthly 2026-07']);
  });

  it('does not depend on input order (nor on exact duplicates)', () => {
    const policy = { keepLast: 5, daily: 7, weekly: 4, monthly: 6 };
    const reference = decideRetention(history, policy, NOW);
    for (const seed of [1, 2, 3, 42]) {
      expect(decideRetention(shuffled(history, seed), policy, NOW)).toEqual(reference);
    }
    expect(decideRetention([...history].reverse(), policy, NOW)).toEqual(reference);
    expect(decideRetention(shuffled([...history, ...history.slice(100, 140)], 7), policy, NOW)).toEqual(reference);
  });
});

describe('decideRetention: a small case checked by hand', () => {
  // now: Wednesday 2026-11-25 12:00Z (ISO week 2026-W48). Window: max(1, 3) days -> created after 2026-11-22T12:00Z.
  const now = new Date('2026-11-25T12:00:00Z');
  const policy = { keepLast: 2, daily: 3, weekly: 2, monthly: 2 };
  const backups = [
    b('a', '2026-11-25T06:00:00Z', false),
    b('b', '2026-11-25T00:00:00Z'),
    b('c', '2026-11-24T18:00:00Z'),
    b('d', '2026-11-24T06:00:00Z'),
    b('k', '2026-11-22T12:00:00Z', false), // exactly 3 days old: outside the window
    b('e', '2026-11-21T12:00:00Z'), // Saturday, 2026-W47
    b('f', '2026-11-21T06:00:00Z'),
    b('g', '2026-11-20T12:00:00Z', false),
    b('h', '2026-10-31T23:00:00Z'),
    b('i', '2026-10-31T22:00:00Z'),
    b('j', '2026-09-15T00:00:00Z'),
    b('l', 'not-a-date'),
  ];

  it('keeps and deletes exactly these', () => {
    const decision = decideRetention(backups, policy, now);
    expect(decision.keep).toEqual([
      { key: 'a', created: '2026-11-25T06:00:00Z', reasons: ['last 2', 'inside the policy window'] },
      {
        key: 'b',
        created: '2026-11-25T00:00:00Z',
        reasons: ['last 2', 'daily 2026-11-25', 'weekly 2026-W48', 'monthly 2026-11', 'newest verified', 'inside the policy window'],
      },
      { key: 'c', created: '2026-11-24T18:00:00Z', reasons: ['daily 2026-11-24', 'inside the policy window'] },
      { key: 'd', created: '2026-11-24T06:00:00Z', reasons: ['inside the policy window'] },
      { key: 'e', created: '2026-11-21T12:00:00Z', reasons: ['daily 2026-11-21', 'weekly 2026-W47'] },
      { key: 'h', created: '2026-10-31T23:00:00Z', reasons: ['monthly 2026-10'] },
      { key: 'l', created: 'not-a-date', reasons: ['unreadable timestamp: kept'] },
    ]);
    expect(decision.delete).toEqual([
      { key: 'j', created: '2026-09-15T00:00:00Z' },
      { key: 'i', created: '2026-10-31T22:00:00Z' },
      { key: 'g', created: '2026-11-20T12:00:00Z' },
      { key: 'f', created: '2026-11-21T06:00:00Z' },
      { key: 'k', created: '2026-11-22T12:00:00Z' },
    ]);
    expect(decideRetention(shuffled(backups, 5), policy, now)).toEqual(decision);
  });

  it('prints a dry-run table, newest first', () => {
    const lines = formatDecision(decideRetention(backups, policy, now)).split('\n');
    expect(lines[0]).toMatch(/^CREATED\s+ACTION\s+REASONS\s+KEY$/);
    expect(lines.slice(1, -1).map((l) => l.trim().split(/\s+/).pop())).toEqual([
      'a',
      'b',
      'c',
      'd',
      'k',
      'e',
      'f',
      'g',
      'h',
      'i',
      'j',
      'l',
    ]);
    const widestReasons = 'last 2, daily 2026-11-25, weekly 2026-W48, monthly 2026-11, newest verified, inside the policy window';
    expect(lines[1]).toBe(`2026-11-25T06:00:00Z  KEEP    ${'last 2, inside the policy window'.padEnd(widestReasons.length)}  a`);
    expect(lines[2]).toBe(`2026-11-25T00:00:00Z  KEEP    ${widestReasons}  b`);
    expect(lines.find((l) => l.endsWith('  k'))).toMatch(/^2026-11-22T12:00:00Z {2}DELETE {2}-\s+k$/);
    expect(lines.find((l) => l.endsWith('  l'))).toMatch(/^not-a-date\s+KEEP {4}unreadable timestamp: kept\s+l$/);
    expect(lines[lines.length - 1]).toBe('7 kept, 5 to delete');
    expect(formatDecision({ keep: [], delete: [] })).toBe('no backups');
  });
});

describe('decideRetention: edge cases', () => {
  const policy = { keepLast: 5, daily: 7, weekly: 4, monthly: 6 };

  it('handles an empty input', () => {
    expect(decideRetention([], policy, new Date('2026-11-25T00:00:00Z'))).toEqual({ keep: [], delete: [] });
  });

  it('keeps only keepLast and the window when nothing is verified', () => {
    const backups = Array.from({ length: 40 }, (_, i) =>
      b(`u${String(i).padStart(2, '0')}`, new Date(Date.UTC(2026, 9, 1) + i * DAY).toISOString(), false),
    );
    // newest: u39 on 2026-11-09; now 2026-11-12T00:00Z; daily 2 -> window 2 days: nothing inside.
    const decision = decideRetention(backups, { keepLast: 3, daily: 2, weekly: 4, monthly: 6 }, new Date('2026-11-12T00:00:00Z'));
    expect(decision.keep).toEqual([
      { key: 'u39', created: '2026-11-09T00:00:00.000Z', reasons: ['last 3'] },
      { key: 'u38', created: '2026-11-08T00:00:00.000Z', reasons: ['last 3'] },
      { key: 'u37', created: '2026-11-07T00:00:00.000Z', reasons: ['last 3'] },
    ]);
    expect(decision.delete.map((d) => d.key)).toEqual(Array.from({ length: 37 }, (_, i) => `u${String(i).padStart(2, '0')}`));
  });

  it('keeps everything when keepLast exceeds the count', () => {
    const backups = [b('x1', '2025-01-01T00:00:00Z', false), b('x2', '2025-06-01T00:00:00Z'), b('x3', '2025-06-02T00:00:00Z', false)];
    const decision = decideRetention(backups, { keepLast: 10, daily: 0, weekly: 0, monthly: 0 }, new Date('2026-11-25T00:00:00Z'));
    expect(keptKeys(decision)).toEqual(['x3', 'x2', 'x1']);
    expect(decision.delete).toEqual([]);
    expect(reasonsOf(decision, 'x2')).toEqual(['last 10', 'newest verified']);
  });

  it('never deletes the newest verified backup, even when older than several unverified ones', () => {
    const backups = [
      b('v0', '2026-11-01T00:00:00Z'),
      b('v1', '2026-11-02T00:00:00Z'),
      b('u1', '2026-11-03T00:00:00Z', false),
      b('u2', '2026-11-04T00:00:00Z', false),
      b('u3', '2026-11-05T00:00:00Z', false),
      b('u4', '2026-11-06T00:00:00Z', false),
    ];
    const decision = decideRetention(backups, { keepLast: 2, daily: 0, weekly: 0, monthly: 0 }, new Date('2026-11-20T00:00:00Z'));
    expect(decision.keep).toEqual([
      { key: 'u4', created: '2026-11-06T00:00:00Z', reasons: ['last 2'] },
      { key: 'u3', created: '2026-11-05T00:00:00Z', reasons: ['last 2'] },
      { key: 'v1', created: '2026-11-02T00:00:00Z', reasons: ['newest verified'] },
    ]);
    expect(decision.delete.map((d) => d.key)).toEqual(['v0', 'u1', 'u2']);
  });

  it('never lets an unverified backup fill a bucket', () => {
    const backups = [
      b('day2-unverified', '2026-11-02T12:00:00Z', false),
      b('day2-verified', '2026-11-02T06:00:00Z'),
      b('day1', '2026-11-01T06:00:00Z'),
    ];
    const decision = decideRetention(backups, { keepLast: 1, daily: 1, weekly: 0, monthly: 0 }, new Date('2026-11-30T00:00:00Z'));
    expect(decision.keep).toEqual([
      { key: 'day2-unverified', created: '2026-11-02T12:00:00Z', reasons: ['last 1'] },
      { key: 'day2-verified', created: '2026-11-02T06:00:00Z', reasons: ['daily 2026-11-02', 'newest verified'] },
    ]);
    expect(decision.delete.map((d) => d.key)).toEqual(['day1']);
  });

  it('uses ISO weeks across a year end', () => {
    const weekOf = (created: string) =>
      reasonsOf(
        decideRetention([b('only', created)], { keepLast: 1, daily: 0, weekly: 1, monthly: 0 }, new Date('2030-01-01T00:00:00Z')),
        'only',
      )!.find((r) => r.startsWith('weekly '));
    expect(weekOf('2026-12-31T12:00:00Z')).toBe('weekly 2026-W53'); // Thursday: 2026 has 53 ISO weeks
    expect(weekOf('2027-01-01T00:00:00Z')).toBe('weekly 2026-W53'); // Friday: still the last week of ISO year 2026
    expect(weekOf('2027-01-03T23:59:59Z')).toBe('weekly 2026-W53'); // Sunday
    expect(weekOf('2027-01-04T00:00:00Z')).toBe('weekly 2027-W01'); // Monday
    expect(weekOf('2025-12-28T23:59:59Z')).toBe('weekly 2025-W52'); // Sunday
    expect(weekOf('2025-12-29T00:00:00Z')).toBe('weekly 2026-W01'); // Monday: already ISO year 2026
    expect(weekOf('2026-11-24T00:00:00Z')).toBe('weekly 2026-W48');
    expect(weekOf('2026-11-25T01:30:00+02:00')).toBe('weekly 2026-W48'); // an offset is converted to UTC first
    expect(weekOf('2026-11-23T00:30:00+02:00')).toBe('weekly 2026-W47'); // = Sunday 2026-11-22T22:30Z

    // 2026-12-31 and 2027-01-01 share a week (only the newer fills it), but not a month or a year.
    const backups = [b('dec31', '2026-12-31T12:00:00Z'), b('jan01', '2027-01-01T12:00:00Z'), b('jan04', '2027-01-04T12:00:00Z')];
    const decision = decideRetention(backups, { keepLast: 1, daily: 0, weekly: 5, monthly: 0 }, new Date('2027-02-01T00:00:00Z'));
    expect(decision.keep).toEqual([
      { key: 'jan04', created: '2027-01-04T12:00:00Z', reasons: ['last 1', 'weekly 2027-W01', 'newest verified'] },
      { key: 'jan01', created: '2027-01-01T12:00:00Z', reasons: ['weekly 2026-W53'] },
    ]);
    expect(decision.delete).toEqual([{ key: 'dec31', created: '2026-12-31T12:00:00Z' }]);
    const monthly = decideRetention(backups, { keepLast: 1, daily: 0, weekly: 0, monthly: 5 }, new Date('2027-02-01T00:00:00Z'));
    expect(reasonsOf(monthly, 'dec31')).toEqual(['monthly 2026-12']);
    expect(reasonsOf(monthly, 'jan04')).toEqual(['last 1', 'monthly 2027-01', 'newest verified']);
  });

  it('keeps backups whose timestamp cannot be read', () => {
    const backups = [
      b('good-old', '2020-01-01T00:00:00Z'),
      b('good-new', '2020-02-01T00:00:00Z'),
      b('words', 'yesterday'),
      b('unknown', 'unknown'),
      b('empty', ''),
      b('impossible-date', '2020-02-30T00:00:00Z'),
      b('no-zone', '2020-01-15T00:00:00'), // local time: its meaning depends on the machine
      b('date-only', '2020-01-15'),
      b('hour-24', '2020-01-15T24:00:00Z'),
      { key: 'not-a-string', created: 12345 as unknown as string, verified: true },
    ];
    const decision = decideRetention(backups, { keepLast: 1, daily: 0, weekly: 0, monthly: 0 }, new Date('2026-11-25T00:00:00Z'));
    expect(decision.delete).toEqual([{ key: 'good-old', created: '2020-01-01T00:00:00Z' }]);
    const unreadable = ['date-only', 'empty', 'hour-24', 'impossible-date', 'no-zone', 'not-a-string', 'unknown', 'words'];
    expect(keptKeys(decision)).toEqual(['good-new', ...unreadable]);
    for (const k of unreadable) expect(reasonsOf(decision, k)).toEqual(['unreadable timestamp: kept']);
    // Unreadable ones take no part: 'good-new' is still last 1 and newest verified.
    expect(reasonsOf(decision, 'good-new')).toEqual(['last 1', 'newest verified']);
  });

  it('treats duplicate keys as one, and keeps contradictory duplicates', () => {
    const now = new Date('2026-11-25T00:00:00Z');
    const p = { keepLast: 1, daily: 0, weekly: 0, monthly: 0 };
    // Same instant written two ways, same flag: one backup.
    const same = decideRetention(
      [b('k', '2026-01-01T00:00:00Z'), b('k', '2026-01-01T00:00:00.000Z'), b('k', '2026-01-01T01:00:00+01:00')],
      p,
      now,
    );
    expect(same).toEqual({ keep: [{ key: 'k', created: '2026-01-01T00:00:00.000Z', reasons: ['last 1', 'newest verified'] }], delete: [] });
    // Contradictory copies: kept, and left out of everything else.
    const backups = [
      b('old', '2026-01-01T00:00:00Z'),
      b('new', '2026-01-02T00:00:00Z'),
      b('dup', '2026-01-03T00:00:00Z', true),
      b('dup', '2026-01-03T00:00:00Z', false),
      b('dup2', '2025-01-01T00:00:00Z'),
      b('dup2', 'garbage'),
    ];
    for (const order of [backups, [...backups].reverse(), shuffled(backups, 9)]) {
      expect(decideRetention(order, p, now)).toEqual({
        keep: [
          { key: 'new', created: '2026-01-02T00:00:00Z', reasons: ['last 1', 'newest verified'] },
          { key: 'dup', created: '2026-01-03T00:00:00Z', reasons: ['conflicting duplicate records: kept'] },
          { key: 'dup2', created: '2025-01-01T00:00:00Z', reasons: ['unreadable timestamp: kept', 'conflicting duplicate records: kept'] },
        ],
        delete: [{ key: 'old', created: '2026-01-01T00:00:00Z' }],
      });
    }
  });

  it('breaks equal timestamps by key, whatever the input order', () => {
    const backups = [b('snap-a', '2026-11-01T00:00:00Z'), b('snap-b', '2026-11-01T00:00:00Z'), b('snap-c', '2026-11-01T00:00:00Z')];
    const p = { keepLast: 1, daily: 0, weekly: 0, monthly: 0 };
    for (const order of [backups, [...backups].reverse()]) {
      const d = decideRetention(order, p, new Date('2026-11-25T00:00:00Z'));
      expect(keptKeys(d)).toEqual(['snap-c']);
      expect(d.delete.map((x) => x.key)).toEqual(['snap-a', 'snap-b']);
    }
  });

  it('protects the window: younger than max(1, daily) days, future-dated included', () => {
    const now = new Date('2026-11-25T12:00:00Z');
    const backups = [
      b('future', '2026-11-26T00:00:00Z', false), // clock skew
      b('newest-verified', '2026-11-20T00:00:00Z'),
      b('young', '2026-11-24T12:00:01Z', false), // 1 s short of 24h old
      b('exactly-a-day', '2026-11-24T12:00:00Z', false),
      b('old', '2026-11-23T00:00:00Z', false),
    ];
    const d0 = decideRetention(backups, { keepLast: 1, daily: 0, weekly: 0, monthly: 0 }, now);
    expect(d0.keep).toEqual([
      { key: 'future', created: '2026-11-26T00:00:00Z', reasons: ['last 1', 'inside the policy window'] },
      { key: 'young', created: '2026-11-24T12:00:01Z', reasons: ['inside the policy window'] },
      { key: 'newest-verified', created: '2026-11-20T00:00:00Z', reasons: ['newest verified'] },
    ]);
    expect(d0.delete.map((x) => x.key)).toEqual(['old', 'exactly-a-day']);
    // daily 3: the window is 3 days, and the verified one fills daily 2026-11-20.
    const d3 = decideRetention(backups, { keepLast: 1, daily: 3, weekly: 0, monthly: 0 }, now);
    expect(d3.delete).toEqual([]);
    expect(reasonsOf(d3, 'old')).toEqual(['inside the policy window']);
    expect(reasonsOf(d3, 'newest-verified')).toEqual(['daily 2026-11-20', 'newest verified']);
  });

  it('refuses an invalid policy or clock instead of guessing', () => {
    const now = new Date('2026-11-25T00:00:00Z');
    const backups = [b('x', '2026-01-01T00:00:00Z')];
    expect(() => decideRetention(backups, { keepLast: 0, daily: 7, weekly: 4, monthly: 6 }, now)).toThrow(RangeError);
    expect(() => decideRetention(backups, { keepLast: 5, daily: -1, weekly: 4, monthly: 6 }, now)).toThrow(/daily/);
    expect(() => decideRetention(backups, { keepLast: 5, daily: 7, weekly: 1.5, monthly: 6 }, now)).toThrow(/weekly/);
    expect(() => decideRetention(backups, { keepLast: 5, daily: 7, weekly: 4, monthly: Number.NaN }, now)).toThrow(/monthly/);
    expect(() => decideRetention(backups, { keepLast: 5, daily: 7, weekly: 4 } as RetentionPolicy, now)).toThrow(/monthly/);
    expect(() => decideRetention(backups, policy, new Date('nonsense'))).toThrow(/now/);
  });

  it('does not modify its input', () => {
    const backups = [b('a', '2026-01-02T00:00:00Z'), b('b', '2026-01-01T00:00:00Z')];
    const copy = JSON.parse(JSON.stringify(backups));
    decideRetention(backups, policy, new Date('2026-11-25T00:00:00Z'));
    expect(backups).toEqual(copy);
  });
});
