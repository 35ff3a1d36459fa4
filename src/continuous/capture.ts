import type { S3Client } from '@aws-sdk/client-s3';
import type { StorageConfig } from '../config/schema';
import { getKey, status, watchKeyspace, type EtcdClient, type WatchEvent } from '../etcd/grpc';
import { addRevisions, compareRevisions, type Revision } from '../etcd/revision';
import { baseDigest, SEGMENT_FORMAT, segmentDigest, segmentPlace, type Segment, type SegmentEvent } from './segment';
import { listSegmentKeys, readSegment, UntrustedSegment, writeSegment, type SegmentCodec } from './segment-store';

/**
 * The capture: etcd's whole-keyspace watch from a chain's tip on, cut into segments and written to the bucket. A
 * segment is cut every `segmentSeconds` (or once it holds `maxSegmentBytes`), only between watch results, which hold
 * whole revisions (src/etcd/grpc/watch.ts), so a revision is never split. While a segment is being written nothing
 * more is read from the watch: a slow store stops the watch (HTTP/2 flow control) instead of filling memory.
 */

/** Where a chain continues: the next segment's number, the revision it starts after and the digest it links to. */
export interface ChainTip {
  chain: string;
  base: Segment['base'];
  /** The next segment's `sequence`. */
  sequence: number;
  /** The newest revision durable in the bucket (the base's when the chain has no segment yet). */
  lastRevision: Revision;
  /** The digest the next segment links to. */
  previous: string;
  /** The newest segment's key, when there is one: where a listing for newer ones starts. */
  key?: string;
  /** When the newest durable revision was seen (the newest segment's `created`). */
  at?: string;
  /** The chain's last change (absent before its first segment): etcd's history must still hold it to go on. */
  lastEvent?: { type: 'put' | 'delete'; key: string; modRevision: Revision };
}

/** What the capture reports after each durable step. */
export interface Durable extends ChainTip {
  /** Every revision of etcd up to this one is durable: lastRevision, or more when etcd said nothing else changed. */
  knownThrough: Revision;
  /** When that was known: the recovery point is this moment. */
  knownAt: string;
  /** The segment just written (absent for a progress report on a quiet keyspace). */
  written?: { key: string; count: number; storedBytes: number; firstRevision: Revision; lastRevision: Revision };
}

/**
 * The etcd the capture reaches is not the one the chain recorded: another cluster id, or a revision behind the chain
 * (wiped, or restored from a snapshot). Its history is not the chain's: the chain ends here; a new one needs a new base.
 */
export class EtcdReplacedError extends Error {
  constructor(
    readonly chain: string,
    reason: string,
  ) {
    super(`chain ${chain} cannot be continued: ${reason}; a new chain starts from a new full backup`);
    this.name = 'EtcdReplacedError';
  }
}

/** The chain's newest segment cannot be believed: the chain cannot be continued, only a new one started. */
export class ChainTipError extends Error {
  constructor(
    readonly chain: string,
    readonly key: string,
    reason: string,
  ) {
    super(`chain ${chain} cannot be continued: its newest segment ${key} ${reason}; a new chain starts from a new full backup`);
    this.name = 'ChainTipError';
  }
}

/**
 * Where a chain continues, from the bucket (the one record of what is durable): its newest segment, read back and
 * believed, or the base when the chain has none. `after`, a segment key known to exist (a heartbeat's), lists only
 * what is newer. The chain's older segments are not re-read here: the restore checks the whole chain.
 */
export async function readChainTip(
  s3: S3Client,
  storage: Pick<StorageConfig, 'bucket' | 'prefix'>,
  cluster: string,
  chain: string,
  base: Segment['base'],
  loadKey: (keyId: string) => Promise<Buffer>,
  after?: string,
): Promise<ChainTip> {
  const keys = await listSegmentKeys(s3, storage, cluster, chain, after);
  const key = keys.at(-1) ?? after;
  if (!key) return { chain, base, sequence: 0, lastRevision: base.revision, previous: baseDigest(base) };
  let s: Segment;
  try {
    s = await readSegment(s3, storage.bucket, key, loadKey);
  } catch (err) {
    if (err instanceof UntrustedSegment) throw new ChainTipError(chain, key, `is not believed (${err.reason})`);
    throw err;
  }
  const place = segmentPlace(storage.prefix, s.cluster, s.chain, s.firstRevision, s.lastRevision);
  if (s.cluster !== cluster || s.chain !== chain || s.base.manifestKey !== base.manifestKey || !key.startsWith(place))
    throw new ChainTipError(
      chain,
      key,
      `belongs elsewhere (cluster ${s.cluster}, chain ${s.chain}, revisions ${s.firstRevision}..${s.lastRevision})`,
    );
  return {
    chain,
    base,
    sequence: s.sequence + 1,
    lastRevision: s.lastRevision,
    previous: segmentDigest(s),
    key,
    at: s.created,
    lastEvent: lastEventOf(s),
  };
}

export interface CaptureOptions {
  s3: S3Client;
  storage: Pick<StorageConfig, 'bucket' | 'prefix' | 'objectLock'>;
  cluster: string;
  codec: SegmentCodec;
  tip: ChainTip;
  client: EtcdClient;
  segmentSeconds: number;
  maxSegmentBytes: number;
  signal: AbortSignal;
  onDurable: (d: Durable) => void;
  now?: () => Date;
}

/** Marks closer together than this are one: a time resolves to a tenth of a second, and a storm does not bloat a segment. */
const MARK_RESOLUTION_MS = 100;

/**
 * Runs until the signal aborts (resolves) or the watch or the store fails (rejects; a WatchCompactedError is a gap:
 * the chain cannot go on). What was read but not yet written is not durable and is read again by the next run, which
 * starts from the bucket's tip.
 */
export async function captureSegments(o: CaptureOptions): Promise<void> {
  const now = o.now ?? (() => new Date());
  const stop = new AbortController();
  const onAbort = () => stop.abort(o.signal.reason);
  o.signal.addEventListener('abort', onAbort, { once: true });
  if (o.signal.aborted) stop.abort(o.signal.reason);
  let tip = o.tip;
  await checkSameHistory(o.client, tip);
  const watch = watchKeyspace(o.client, addRevisions(tip.lastRevision, 1), { signal: stop.signal, progressNotify: true });
  const results = watch[Symbol.asyncIterator]();
  let pending: SegmentEvent[] = [];
  let pendingBytes = 0;
  let marks: Segment['marks'] = [];
  let openedAt = 0;
  let quietSince = Date.now();

  const cut = async () => {
    const first = pending[0].modRevision;
    const last = pending.at(-1)!.modRevision;
    const unsigned: Segment = {
      format: SEGMENT_FORMAT,
      cluster: o.cluster,
      chain: tip.chain,
      base: tip.base,
      sequence: tip.sequence,
      firstRevision: first,
      lastRevision: last,
      count: pending.length,
      previous: tip.previous,
      created: marks.at(-1)!.at,
      marks,
      events: pending,
    };
    const { key, segment, storedBytes } = await writeSegment(o.s3, o.storage, unsigned, o.codec, stop.signal);
    tip = {
      ...tip,
      sequence: tip.sequence + 1,
      lastRevision: last,
      previous: segmentDigest(segment),
      key,
      at: segment.created,
      lastEvent: lastEventOf(segment),
    };
    o.onDurable({
      ...tip,
      knownThrough: last,
      knownAt: segment.created,
      written: { key, count: segment.count, storedBytes, firstRevision: first, lastRevision: last },
    });
    pending = [];
    pendingBytes = 0;
    marks = [];
    quietSince = Date.now();
  };

  const periodMs = o.segmentSeconds * 1000;
  let next = results.next();
  try {
    for (;;) {
      const due = pending.length ? openedAt + periodMs : quietSince + periodMs;
      const timer = new Promise<'tick'>((resolve) => {
        const t = setTimeout(() => resolve('tick'), Math.max(0, due - Date.now()));
        next.then(
          () => clearTimeout(t),
          () => clearTimeout(t),
        );
      });
      const r = await Promise.race([next, timer]);
      if (stop.signal.aborted) return;
      if (r === 'tick') {
        if (pending.length) await cut();
        else {
          // Quiet: ask etcd to say how far it is; its answer comes once everything before it was delivered.
          watch.requestProgress();
          quietSince = Date.now();
        }
        continue;
      }
      if (r.done) throw new Error('the watch ended');
      next = results.next();
      const res = r.value;
      if (res.type === 'progress') {
        if (!pending.length && compareRevisions(res.revision, tip.lastRevision) >= 0)
          o.onDurable({ ...tip, knownThrough: res.revision, knownAt: now().toISOString() });
        continue;
      }
      if (res.type !== 'events') continue;
      if (!pending.length) openedAt = Date.now();
      for (const e of res.events) {
        const se = segmentEvent(e);
        pending.push(se);
        pendingBytes += se.key.length + (se.value?.length ?? 0) + 160;
      }
      const at = now().toISOString();
      const lastRevision = pending.at(-1)!.modRevision;
      const lastMark = marks.at(-1);
      if (lastMark && Date.parse(at) - Date.parse(lastMark.at) < MARK_RESOLUTION_MS)
        marks[marks.length - 1] = { revision: lastRevision, at: lastMark.at };
      else marks.push({ revision: lastRevision, at });
      if (pendingBytes >= o.maxSegmentBytes) await cut();
    }
  } catch (err) {
    if (stop.signal.aborted && o.signal.aborted) return;
    throw err;
  } finally {
    o.signal.removeEventListener('abort', onAbort);
    stop.abort();
    // The generator's finally cancels the call; a pending next() settles with the abort.
    next.catch(() => {});
    void results.return?.(undefined).catch(() => {});
  }
}

function lastEventOf(s: Segment): ChainTip['lastEvent'] {
  const e = s.events.at(-1)!;
  return { type: e.type, key: e.key, modRevision: e.modRevision };
}

/**
 * Before a single event is read, that the etcd reached is the one whose history the chain records. etcd accepts a
 * watch from a revision it has not reached yet, so a wiped etcd (or one restored from a snapshot without a revision
 * bump) would hand over revisions of its own history as if they continued the chain; its cluster and member ids are no
 * help (derived from names and peer URLs, the same after a wipe). So: its revision is not behind the chain's, and at
 * the chain's last revision it holds the chain's last change.
 */
async function checkSameHistory(client: EtcdClient, tip: ChainTip): Promise<void> {
  const now = await status(client);
  if (compareRevisions(now.revision, tip.lastRevision) < 0)
    throw new EtcdReplacedError(
      tip.chain,
      `etcd at ${client.endpoint} is at revision ${now.revision}, behind the chain's ${tip.lastRevision}: it was wiped or restored`,
    );
  const last = tip.lastEvent;
  if (!last) return;
  const key = Buffer.from(last.key, 'base64');
  let kv;
  try {
    kv = (await getKey(client, key, { revision: last.modRevision })).kv;
  } catch (err) {
    // Compacted past it: the watch says so (a chain break) as it starts.
    if (/compacted/.test((err as Error).message)) return;
    throw err;
  }
  const holds = last.type === 'put' ? kv?.modRevision === last.modRevision : kv === undefined;
  if (!holds)
    throw new EtcdReplacedError(
      tip.chain,
      `etcd at ${client.endpoint} does not hold the chain's last change (${last.type} of ${JSON.stringify(key.toString('latin1').slice(0, 200))} at revision ${last.modRevision}) in its history: it was wiped or restored, and its revisions are another history's`,
    );
}

/** A watch event as a segment keeps it: bytes as base64, int64s as digits, the lease only when there is one. */
export function segmentEvent(e: WatchEvent): SegmentEvent {
  const base = {
    key: e.key.toString('base64'),
    createRevision: e.createRevision,
    modRevision: e.modRevision,
    version: e.version,
    ...(e.lease && e.lease !== '0' ? { lease: e.lease } : {}),
  };
  return e.type === 'PUT' ? { type: 'put', ...base, value: e.value.toString('base64') } : { type: 'delete', ...base };
}
