import type { S3Client } from '@aws-sdk/client-s3';
import { clusterBackupPrefix } from '../backup/object-keys';
import { readTrustedBackup, UntrustedBackup, type TrustedBackup, type TrustRules } from '../backup/trusted-catalog';
import { compareRevisions, type Revision } from '../etcd/revision';
import { parsePoint } from './point-spec';
import { chainWalk } from './chain';
import type { Segment } from './segment';
import { listChainIds, listSegmentKeys, readSegment, UntrustedSegment } from './segment-store';

/**
 * Choosing a point to restore to: a revision, a moment, or the newest durable one; and proving, before anything is
 * touched, that the bucket holds a believed base and an unbroken chain of segments up to it. The plan names the
 * exact revision and the moment it lands on, and what it leaves out.
 */
export interface PointPlan {
  cluster: string;
  /** What was asked, as given. */
  asked: string;
  chain: string;
  base: { manifestKey: string; revision: Revision; created: string };
  /** The exact revision the restore lands on, and when it was seen (the base's time when it is the base's revision). */
  revision: Revision;
  time: string;
  /** Segments to replay (0: the base itself is the point). */
  segments: number;
  /** The newest point the chain proves, when it was seen. */
  newest: { revision: Revision; time: string };
  /** A segment the chain breaks at, when the person asked for the newest point the chain can prove. */
  brokenAt?: { key: string; problem: string };
  /** What the restore leaves out, in words. */
  notRestored: string;
}

/** The point cannot be restored: why, and the range that can. */
export class PointUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PointUnavailable';
  }
}

interface Candidate {
  chain: string;
  base: TrustedBackup;
}

/** The cluster's chains whose base is believed, newest base first. */
async function chainsNewestFirst(s3: S3Client, rules: TrustRules): Promise<{ chains: Candidate[]; passedOver: string[] }> {
  const ids = await listChainIds(s3, rules.storage, rules.cluster);
  const chains: Candidate[] = [];
  const passedOver: string[] = [];
  for (const chain of ids.reverse()) {
    const manifestKey = `${clusterBackupPrefix(rules.storage.prefix, rules.cluster)}${chain}.manifest.json`;
    try {
      chains.push({ chain, base: await readTrustedBackup(s3, rules, manifestKey) });
    } catch (err) {
      if (!(err instanceof UntrustedBackup)) throw err;
      passedOver.push(`chain ${chain}: ${err.message}`);
    }
  }
  chains.sort((a, b) => compareRevisions(b.base.manifest.etcd.revision, a.base.manifest.etcd.revision));
  return { chains, passedOver };
}

/** Walks a chain from its base, reading and checking each segment, until `enough` says the point is passed. */
async function walkChain(
  s3: S3Client,
  rules: TrustRules,
  c: Candidate,
  enough: (s: Segment) => boolean,
  onSegment: (s: Segment) => void,
): Promise<{ segments: number; provenThrough: Revision; lastTime: string; problem?: { key: string; problem: string } }> {
  const base = { manifestKey: c.base.manifestKey, revision: c.base.manifest.etcd.revision };
  const walk = chainWalk({ prefix: rules.storage.prefix, cluster: rules.cluster, chain: c.chain }, base);
  let lastTime = c.base.manifest.created;
  for (const key of await listSegmentKeys(s3, rules.storage, rules.cluster, c.chain)) {
    let segment: Segment;
    try {
      segment = await readSegment(s3, rules.storage.bucket, key, rules.loadKey);
    } catch (err) {
      if (!(err instanceof UntrustedSegment)) throw err;
      return { ...walk.state(), lastTime, problem: { key, problem: err.reason } };
    }
    const problem = walk.add({ key, segment });
    if (problem) return { ...walk.state(), lastTime, problem: { key, problem } };
    onSegment(segment);
    lastTime = segment.created;
    if (enough(segment)) break;
  }
  return { ...walk.state(), lastTime };
}

const describe = (r: Revision, t: string) => `revision ${r} (seen ${t})`;

/**
 * The plan for a point, or PointUnavailable naming why and the range there is. `stopAtBreak`: a broken chain's
 * newest provable point is acceptable for "newest" (a person's choice; otherwise a break is refused).
 */
export async function planPoint(
  s3: S3Client,
  rules: TrustRules,
  asked: string,
  options: { stopAtBreak?: boolean; now: Date },
): Promise<PointPlan> {
  const spec = parsePoint(asked);
  if (typeof spec === 'string') throw new PointUnavailable(`at: ${spec}`);
  if (spec.kind === 'time' && Date.parse(spec.at) > options.now.getTime())
    throw new PointUnavailable(`at: ${spec.at} is in the future (now ${options.now.toISOString()})`);
  const { chains, passedOver } = await chainsNewestFirst(s3, rules);
  const noChain = passedOver.length ? ` (passed over: ${passedOver.join('; ')})` : '';
  if (!chains.length)
    throw new PointUnavailable(
      `cluster ${rules.cluster} has no continuous backup chain in the bucket${noChain}: restore a full backup instead`,
    );
  const oldest = chains.at(-1)!.base.manifest;
  const candidates = chains.filter((c) =>
    spec.kind === 'revision'
      ? compareRevisions(c.base.manifest.etcd.revision, spec.revision) <= 0
      : spec.kind === 'time'
        ? Date.parse(c.base.manifest.created) <= Date.parse(spec.at)
        : true,
  );
  const range = async () => {
    const newest = await walkChain(
      s3,
      rules,
      chains[0],
      () => false,
      () => undefined,
    );
    return `the chains hold revision ${oldest.etcd.revision} (${oldest.created}) to ${describe(newest.provenThrough, newest.lastTime)}`;
  };
  if (!candidates.length) throw new PointUnavailable(`at: ${asked} is before the oldest base of a chain; ${await range()}`);

  for (const c of spec.kind === 'newest' ? candidates.slice(0, 1) : candidates) {
    const baseRevision = c.base.manifest.etcd.revision;
    let point: { revision: Revision; time: string } = { revision: baseRevision, time: c.base.manifest.created };
    const firsts: Revision[] = [];
    let passed = spec.kind === 'revision' && spec.revision === baseRevision;
    const walked = await walkChain(
      s3,
      rules,
      c,
      () => passed,
      (s) => {
        firsts.push(s.firstRevision);
        if (spec.kind === 'newest') point = { revision: s.lastRevision, time: s.created };
        else if (spec.kind === 'revision') {
          if (compareRevisions(s.lastRevision, spec.revision) >= 0) {
            const seen = s.marks.find((m) => compareRevisions(m.revision, spec.revision) >= 0)!;
            point = { revision: spec.revision, time: seen.at };
            passed = true;
          }
        } else
          for (const m of s.marks) {
            if (Date.parse(m.at) > Date.parse(spec.at)) {
              passed = true;
              break;
            }
            point = { revision: m.revision, time: m.at };
          }
      },
    );
    const segments = firsts.filter((f) => compareRevisions(f, point.revision) <= 0).length;
    const reached = spec.kind === 'newest' || passed;
    if (walked.problem && (!reached || (spec.kind === 'newest' && !options.stopAtBreak))) {
      if (spec.kind !== 'newest' || !options.stopAtBreak)
        throw new PointUnavailable(
          `chain ${c.chain} breaks at ${walked.problem.key}: ${walked.problem.problem}; it proves up to ${describe(walked.provenThrough, walked.lastTime)}${spec.kind === 'newest' ? ' (ask for the newest point the chain can prove to restore that: stopAtBreak, --stop-at-break)' : ''}`,
        );
    }
    if (!reached) {
      if (spec.kind === 'revision' && c === candidates[0])
        throw new PointUnavailable(`at: revision ${spec.revision} is after the newest durable point; ${await range()}`);
      if (spec.kind === 'time' && c === candidates[0])
        throw new PointUnavailable(`at: ${spec.at} is after the newest durable point; ${await range()}`);
      continue;
    }
    return {
      cluster: rules.cluster,
      asked,
      chain: c.chain,
      base: { manifestKey: c.base.manifestKey, revision: baseRevision, created: c.base.manifest.created },
      revision: point.revision,
      time: point.time,
      segments,
      newest: { revision: walked.provenThrough, time: walked.lastTime },
      ...(walked.problem ? { brokenAt: walked.problem } : {}),
      notRestored: `changes after ${point.time} (revisions after ${point.revision})`,
    };
  }
  throw new PointUnavailable(`at: ${asked} is not covered by any chain; ${await range()}`);
}
