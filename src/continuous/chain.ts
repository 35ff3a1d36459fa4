import { addRevisions, compareRevisions, revisionDistance, type Revision } from '../etcd/revision';
import { baseDigest, segmentDigest, segmentPlace, type Segment } from './segment';

/**
 * Whether a chain of segments (each already authenticated, in key order) proves every revision from its base on:
 * each segment is this cluster's and this chain's, stored where its revisions say, numbered in sequence, linked by
 * digest to the one before it, starting exactly one revision after the one before it ends, and holding every revision
 * of its range, whole, in order. It stops at the first segment that fails and says which and why, so a restore can
 * refuse, or stop at the newest point the chain still proves when a person asks for that. Pure.
 */
export interface ChainCheck {
  /** The newest revision the chain proves: the base's when not even the first segment holds. */
  provenThrough: Revision;
  /** How many segments, from the first, hold. */
  segments: number;
  problem?: { key: string; problem: string };
}

export interface ChainEntry {
  key: string;
  segment: Segment;
}

export function checkChain(
  where: { prefix: string; cluster: string; chain: string },
  base: Segment['base'],
  entries: readonly ChainEntry[],
): ChainCheck {
  const walk = chainWalk(where, base);
  for (const entry of entries) {
    const problem = walk.add(entry);
    if (problem) return { ...walk.state(), problem: { key: entry.key, problem } };
  }
  return walk.state();
}

/**
 * checkChain one segment at a time, for a reader that must not hold a whole chain (a day of segments): `add` says why
 * the next segment breaks the chain (and then stays at the last good one), or nothing when it holds.
 */
export function chainWalk(where: { prefix: string; cluster: string; chain: string }, base: Segment['base']) {
  let provenThrough = base.revision;
  let previous: Segment | undefined;
  let segments = 0;
  return {
    add({ key, segment }: ChainEntry): string | undefined {
      const problem = segmentProblem(where, base, segments, segment, previous, key);
      if (problem) return problem;
      provenThrough = segment.lastRevision;
      previous = segment;
      segments++;
      return undefined;
    },
    state: (): ChainCheck => ({ provenThrough, segments }),
  };
}

function segmentProblem(
  where: { prefix: string; cluster: string; chain: string },
  base: Segment['base'],
  index: number,
  s: Segment,
  previous: Segment | undefined,
  key: string,
): string | undefined {
  if (s.cluster !== where.cluster) return `a segment of cluster "${s.cluster}", not of "${where.cluster}"`;
  if (s.chain !== where.chain || s.base.manifestKey !== base.manifestKey || s.base.revision !== base.revision)
    return `it extends ${s.base.manifestKey} (chain ${s.chain}), not this chain's base ${base.manifestKey}`;
  const place = segmentPlace(where.prefix, where.cluster, where.chain, s.firstRevision, s.lastRevision);
  if (!key.startsWith(place))
    return `stored as ${key}, but its revisions ${s.firstRevision}..${s.lastRevision} belong at ${place}: moved, so not believed`;
  if (s.sequence !== index)
    return `it is segment ${s.sequence} of its chain where segment ${index} belongs: one is missing or out of order`;
  const expectedPrevious = previous ? segmentDigest(previous) : baseDigest(base);
  if (s.previous !== expectedPrevious)
    return previous
      ? 'it does not follow the segment before it (its link is another digest): spliced from elsewhere'
      : 'it does not start from this base';
  const expectedFirst = addRevisions(previous ? previous.lastRevision : base.revision, 1);
  if (s.firstRevision !== expectedFirst)
    return `it starts at revision ${s.firstRevision} where ${expectedFirst} follows: ${compareRevisions(s.firstRevision, expectedFirst) > 0 ? `revisions ${expectedFirst}..${(BigInt(s.firstRevision) - 1n).toString()} are missing` : 'it overlaps the one before it'}`;
  if (compareRevisions(s.lastRevision, s.firstRevision) < 0)
    return `its last revision ${s.lastRevision} is before its first ${s.firstRevision}`;
  if (s.count !== s.events.length) return `it says ${s.count} events and holds ${s.events.length}`;
  return eventsProblem(s) ?? marksProblem(s);
}

/** Every revision of the range, each whole (one or more events), in order, none outside it. */
function eventsProblem(s: Segment): string | undefined {
  let at: Revision | undefined;
  for (const e of s.events) {
    if (at === undefined) {
      if (e.modRevision !== s.firstRevision) return `its first event is at revision ${e.modRevision}, not ${s.firstRevision}`;
    } else if (e.modRevision !== at) {
      const step = revisionDistance(e.modRevision, at);
      if (step !== 1n)
        return `its events go from revision ${at} to ${e.modRevision}: ${step < 1n ? 'out of order' : 'revisions in between are missing'}`;
    }
    if (e.type === 'put' && e.value === undefined) return `a put at revision ${e.modRevision} without its value`;
    at = e.modRevision;
  }
  if (at === undefined) return 'it holds no events';
  if (at !== s.lastRevision) return `its last event is at revision ${at}, not ${s.lastRevision}`;
  return undefined;
}

/** Marks ascend in revision and time within the range, and the last is the segment's last revision at its `created`. */
function marksProblem(s: Segment): string | undefined {
  let prev: Segment['marks'][number] | undefined;
  for (const m of s.marks) {
    if (compareRevisions(m.revision, s.firstRevision) < 0 || compareRevisions(m.revision, s.lastRevision) > 0)
      return `a time mark at revision ${m.revision}, outside its range ${s.firstRevision}..${s.lastRevision}`;
    if (prev && (compareRevisions(m.revision, prev.revision) <= 0 || Date.parse(m.at) < Date.parse(prev.at)))
      return 'its time marks are out of order';
    prev = m;
  }
  if (prev?.revision !== s.lastRevision || prev.at !== s.created) return `its last time mark is not its last revision at ${s.created}`;
  return undefined;
}
