import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../backup/manifest-auth';
import { manifestAuthSchema } from '../backup/manifest';
import { compressionSuffix, type Compression } from '../backup/object-keys';
import { isRevision, toRevision, type Revision } from '../etcd/revision';
import { formatIssues } from '../config/load';

/**
 * A segment: the changes etcd made between two revisions, as its whole-keyspace watch reported them, shipped as one
 * object (continuous backups, issue 22). Segments extend a full backup (the chain's base) revision by revision, so a
 * restore to a point is the base plus the segments up to it. A segment is read back from the bucket as untrusted as a
 * manifest is (src/backup/trusted-catalog.ts): signed under its own purpose string, believed only at the key its
 * content gives, and linked to the one before it by digest, so none can be forged, dropped, reordered or spliced in
 * from another cluster's chain without the reader saying which and where.
 *
 * Keys: `<prefix>/<cluster>/chains/<chain>/<first>-<last>.seg.json[.zst|.gz][.enc]`, where the chain is the base
 * backup's `<time>-rev<revision>` and revisions are written with 19 digits (int64's width), so one listing of the
 * chain's folder gives its segments in revision order, a restore needs a listing per thousand segments, and the
 * chain goes in bulk with its base.
 */
export const SEGMENT_FORMAT = 'lifeboat-segment/v1' as const;
export const SEGMENT_PURPOSE = 'lifeboat/segment-auth/v1' as const;

const revision = z.string().refine(isRevision, 'expected an etcd revision (digits)');
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');

/** One watch event, exactly as etcd reported it; keys and values are bytes (base64), int64s are digits. */
export const segmentEventSchema = z.strictObject({
  type: z.enum(['put', 'delete']),
  key: base64,
  /** put only: the value written. */
  value: base64.optional(),
  createRevision: revision,
  modRevision: revision,
  version: revision,
  /** The lease the key was put under ("0": none): a restore must not make leased keys immortal. */
  lease: revision.optional(),
});
export type SegmentEvent = z.infer<typeof segmentEventSchema>;

export const segmentSchema = z.strictObject({
  format: z.literal(SEGMENT_FORMAT),
  cluster: z.string().min(1),
  /** The chain's id: its base backup's `<time>-rev<revision>`. */
  chain: z.string().regex(/^\d{8}T\d{6}Z-rev\d{1,19}$/),
  base: z.strictObject({ manifestKey: z.string().min(1), revision }),
  /** 0 for the first segment after the base, then one more each. */
  sequence: z.number().int().nonnegative(),
  firstRevision: revision,
  lastRevision: revision,
  count: z.number().int().nonnegative(),
  /** SHA-256 (hex) of the previous segment as signed (segmentDigest); for sequence 0, of the base (baseDigest). */
  previous: z.string().regex(/^[0-9a-f]{64}$/),
  /** When the watch delivered the last revision (the recovery point this segment makes durable). */
  created: z.iso.datetime(),
  /**
   * When each watch response arrived: every revision up to `revision` had been seen by `at`. A restore "to a time"
   * lands on the last revision seen by then (etcd's events carry no time of their own), so a point is as fine as etcd's
   * own batching, tens of milliseconds, not the segment's seconds. Ascending in both; the last one is lastRevision's.
   */
  marks: z.array(z.strictObject({ revision, at: z.iso.datetime() })).min(1),
  events: z.array(segmentEventSchema),
  auth: manifestAuthSchema.optional(),
});
export type Segment = z.infer<typeof segmentSchema>;

/** A revision with int64's 19 digits, zero-padded: text order is numeric order. */
export const paddedRevision = (r: Revision): string => toRevision(r).padStart(19, '0');

/** Where a cluster's chains live: one folder per chain, beside (not under) its full backups' `etcd/`. */
export function chainsFolder(prefix: string, cluster: string): string {
  return `${prefix ? `${prefix}/` : ''}${cluster}/chains/`;
}

/** A chain's id: its base backup's `<time>-rev<revision>` (the manifest key's last part without the suffix). */
export function chainIdOf(baseManifestKey: string): string {
  const m = /(\d{8}T\d{6}Z-rev\d{1,19})\.manifest\.json$/.exec(baseManifestKey);
  if (!m) throw new Error(`${baseManifestKey} is not a lifeboat manifest key (<time>-rev<revision>.manifest.json)`);
  return m[1];
}

/** When a chain's base was taken, from the chain's id (`<time>-rev<revision>`). */
export function chainBaseTime(chain: string): string {
  const t = chain.slice(0, 15);
  return `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13, 15)}Z`;
}

export function chainFolder(prefix: string, cluster: string, chain: string): string {
  return `${chainsFolder(prefix, cluster)}${chain}/`;
}

export function segmentKey(o: {
  prefix: string;
  cluster: string;
  chain: string;
  firstRevision: Revision;
  lastRevision: Revision;
  compression: Compression;
  encrypted: boolean;
}): string {
  return `${chainFolder(o.prefix, o.cluster, o.chain)}${paddedRevision(o.firstRevision)}-${paddedRevision(o.lastRevision)}.seg.json${compressionSuffix(o.compression)}${o.encrypted ? '.enc' : ''}`;
}

/**
 * Where a segment of these revisions belongs, up to its codec suffix: a segment is believed only at a key that starts
 * so (the codec only says how to read it; the content is signed).
 */
export function segmentPlace(prefix: string, cluster: string, chain: string, first: Revision, last: Revision): string {
  return `${chainFolder(prefix, cluster, chain)}${paddedRevision(first)}-${paddedRevision(last)}.seg.json`;
}

/** The last revision a segment key names (its name, not yet believed: where to look, as a listing's order is). */
export function lastRevisionOfKey(key: string): Revision | undefined {
  const m = /-(\d{19})\.seg\.json/.exec(key);
  return m ? toRevision(m[1].replace(/^0+(?=\d)/, '')) : undefined;
}

/** The digest the next segment carries as `previous`: over the segment as signed, so its tag is linked too. */
export function segmentDigest(segment: Segment): string {
  return createHash('sha256').update(canonicalJson(segment)).digest('hex');
}

/** What the first segment of a chain links to: its base, by key and revision. */
export function baseDigest(base: Segment['base']): string {
  return createHash('sha256').update(canonicalJson({ base })).digest('hex');
}

export class SegmentError extends Error {
  constructor(
    readonly key: string,
    readonly problems: string[],
  ) {
    super(`segment ${key} is not a usable lifeboat segment: ${problems.join('; ')}`);
    this.name = 'SegmentError';
  }
}

/** A segment's JSON as read back (decrypted, decompressed): strict at every depth; the key and each problem named. */
export function parseSegment(key: string, text: string): Segment {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SegmentError(key, [`not JSON (${(err as Error).message})`]);
  }
  const parsed = segmentSchema.safeParse(json);
  if (!parsed.success) throw new SegmentError(key, formatIssues(parsed.error.issues));
  return parsed.data;
}
