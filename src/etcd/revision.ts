/**
 * An etcd revision is an int64. A JS number is exact only to 2^53, and revisions get there in real clusters (every
 * restore bumps by a billion, and a planted number once pushed one past it), so a revision is carried as its decimal
 * digits everywhere (workflow inputs and results, plans, manifests, reports) and computed on as a bigint. Numbers
 * are still read where older manifests and recorded histories hold them, if they are exact. Pure: workflows use it.
 */
export type Revision = string;
/** What older manifests, plans and histories hold: a plain number (exact, below 2^53). */
export type RevisionLike = Revision | number;

const INT64_MAX = 9223372036854775807n;
const DIGITS = /^(0|[1-9]\d{0,18})$/;

export function isRevision(v: unknown): v is Revision {
  return typeof v === 'string' && DIGITS.test(v) && BigInt(v) <= INT64_MAX;
}

/** A revision from a string of digits or an exact non-negative integer; throws naming `what` for anything else. */
export function toRevision(v: unknown, what = 'revision'): Revision {
  if (isRevision(v)) return v;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return String(v);
  const shown = typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : typeof v === 'number' ? String(v) : typeof v;
  throw new Error(
    `${what}: ${shown} is not an etcd revision (an integer from 0 to 2^63-1, written as digits${typeof v === 'number' ? '; a number past 2^53 has lost its last digits' : ''})`,
  );
}

export function compareRevisions(a: RevisionLike, b: RevisionLike): -1 | 0 | 1 {
  const [x, y] = [BigInt(toRevision(a)), BigInt(toRevision(b))];
  return x < y ? -1 : x > y ? 1 : 0;
}

export const revisionBelow = (a: RevisionLike, b: RevisionLike): boolean => compareRevisions(a, b) < 0;

/** a + b, refused past int64 (etcd could not hold it). */
export function addRevisions(a: RevisionLike, b: RevisionLike): Revision {
  const sum = BigInt(toRevision(a)) + BigInt(toRevision(b));
  if (sum > INT64_MAX) throw new Error(`revision ${toRevision(a)} + ${toRevision(b)} is past etcd's int64 range`);
  return sum.toString();
}

/** a - b (a >= b). */
export function revisionDistance(a: RevisionLike, b: RevisionLike): bigint {
  return BigInt(toRevision(a)) - BigInt(toRevision(b));
}

export function maxRevision(...rs: (RevisionLike | undefined)[]): Revision | undefined {
  let best: Revision | undefined;
  for (const r of rs) if (r !== undefined && (best === undefined || revisionBelow(best, r))) best = toRevision(r);
  return best;
}

/**
 * A revision read losslessly from JSON text (etcdctl's `-w json` output prints it as a bare number, which JSON.parse
 * would round past 2^53): the digits of the first `"<field>": <digits>`. Undefined when there is none.
 */
export function revisionFromJson(text: string, field = 'revision'): Revision | undefined {
  const m = new RegExp(`"${field}"\\s*:\\s*"?(\\d+)"?`).exec(text);
  return m && isRevision(m[1]) ? m[1] : undefined;
}

/** For a Prometheus gauge (float64 anyway): the revision as the nearest number. */
export const revisionAsNumber = (r: RevisionLike): number => Number(toRevision(r));
