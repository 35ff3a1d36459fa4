/**
 * Every change to etcd's whole keyspace from a revision on, for continuous backups (issue 22): the events after a full
 * snapshot's revision, shipped as segments. Read as an async iterator so a slow consumer (an upload) simply stops
 * reading: grpc-js then stops pulling messages, HTTP/2 flow control stops etcd's sender, and etcd parks the watcher as
 * "slow" and catches it up from its own history later; nothing piles up here beyond a few responses and the window.
 * Fragments are requested (one response may batch up to 1000 revisions, far past any message limit) and cut at
 * revision boundaries, so each result holds whole revisions while memory holds at most one revision and one fragment.
 * A start revision etcd has compacted is a WatchCompactedError naming the compact revision: the gap cannot be
 * filled from the watch, only by a new full snapshot.
 */
import { toRevision, type Revision } from '../revision';
import { abortReason, type EtcdClient } from './client';
import type { Event, WatchResponse } from './proto';
import { keyValueRead, type KeyValueRead } from './range';

export interface WatchEvent extends KeyValueRead {
  type: 'PUT' | 'DELETE';
  /** The key's previous value, with `prevKv` (when etcd still has it). */
  prev?: KeyValueRead;
}

export type WatchResult =
  /** The watch is registered; `revision` is etcd's revision then. */
  | { type: 'created'; revision: Revision }
  /**
   * Changes in revision order, whole revisions only. Progress is the last event's modRevision: `headerRevision` (etcd's
   * revision when it sent them) is no promise that nothing else changed up to it, since a catch-up batch stops after
   * 1000 revisions and carries the store's current revision in its header.
   */
  | { type: 'events'; headerRevision: Revision; events: WatchEvent[] }
  /** Nothing changed up to `revision` that was not already given (progress_notify, or requestProgress()). */
  | { type: 'progress'; revision: Revision };

/** The start revision was compacted: the events between it and `compactRevision` are gone from etcd. */
export class WatchCompactedError extends Error {
  constructor(
    readonly startRevision: Revision,
    readonly compactRevision: Revision,
    endpoint: string,
  ) {
    super(
      `etcd at ${endpoint} has compacted revision ${startRevision} (compacted up to ${compactRevision}): a watch can start at ${compactRevision} at the earliest`,
    );
    this.name = 'WatchCompactedError';
  }
}

/** etcd canceled the watch for another reason than compaction (e.g. permission denied). */
export class WatchCanceledError extends Error {
  constructor(
    readonly reason: string,
    endpoint: string,
  ) {
    super(`etcd at ${endpoint} canceled the watch: ${reason || 'no reason given'}`);
    this.name = 'WatchCanceledError';
  }
}

export interface WatchOptions {
  signal?: AbortSignal;
  /** etcd sends a progress result when the keyspace is quiet (every 10 min by default, --watch-progress-notify-interval). Default true. */
  progressNotify?: boolean;
  /** Each event carries the key's previous value. Default false. */
  prevKv?: boolean;
}

export interface KeyspaceWatch extends AsyncIterable<WatchResult> {
  /** Asks etcd for a progress result now; it answers only once the watch has caught up. */
  requestProgress(): void;
}

/** Every key (key "\0" with range_end "\0"), from `startRevision` (inclusive) on. Iterate once. */
export function watchKeyspace(client: EtcdClient, startRevision: Revision, options: WatchOptions = {}): KeyspaceWatch {
  const start = toRevision(startRevision, 'startRevision');
  if (start === '0')
    throw new Error('startRevision: 0 means "from now" to etcd; pass the revision to start at (the snapshot revision + 1)');
  const { signal } = options;
  const call = client.watch.Watch();
  // grpc-js reads ahead until its object-mode stream holds 16 responses; a catch-up response is up to etcd's request
  // limit + 512 KiB (~2 MiB per fragment), so 16 would be ~32 MiB on top of the HTTP/2 window. Holding one keeps a
  // paused consumer at the window plus a response or two (test: the paused watch reads < 16 MiB of a 60 MB backlog).
  // There is no option for it in grpc-js 1.14: the state's field is Node's, stable since Node 10.
  (call as unknown as { _readableState: { highWaterMark: number } })._readableState.highWaterMark = 1;
  // grpc-js emits 'error' when the call ends badly or is canceled, also after the iterator has stopped listening.
  call.on('error', () => {});
  const onAbort = () => call.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) call.cancel();
  call.write({
    createRequest: {
      key: Buffer.from([0]),
      rangeEnd: Buffer.from([0]),
      startRevision: start,
      progressNotify: options.progressNotify ?? true,
      prevKv: options.prevKv ?? false,
      fragment: true,
    },
  });

  async function* results(): AsyncGenerator<WatchResult> {
    // Events of the revision the last fragment ended with: the next fragment may hold more of it.
    let held: Event[] = [];
    try {
      for await (const res of call as AsyncIterable<WatchResponse>) {
        const revision = toRevision(res.header?.revision, 'watch response header.revision');
        if (res.compactRevision !== '0')
          throw new WatchCompactedError(start, toRevision(res.compactRevision, 'compact_revision'), client.endpoint);
        if (res.canceled) throw new WatchCanceledError(res.cancelReason, client.endpoint);
        if (res.created) {
          yield { type: 'created', revision };
          continue;
        }
        const events = held.length ? held.concat(res.events) : res.events;
        const whole = res.fragment ? lastRevisionStart(events) : events.length;
        held = events.slice(whole);
        if (whole > 0) yield { type: 'events', headerRevision: revision, events: events.slice(0, whole).map(watchEvent) };
        else if (!res.fragment && !events.length) yield { type: 'progress', revision };
      }
      throw new Error(`etcd at ${client.endpoint} ended the watch stream`);
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      if (err instanceof WatchCompactedError || err instanceof WatchCanceledError) throw err;
      const e = err as Error & { details?: string };
      throw new Error(`etcd watch at ${client.endpoint} from revision ${start} failed: ${e.details || e.message}`, { cause: err });
    } finally {
      signal?.removeEventListener('abort', onAbort);
      call.cancel();
    }
  }

  const iterator = results();
  return {
    [Symbol.asyncIterator]: () => iterator,
    requestProgress: () => void call.write({ progressRequest: {} }),
  };
}

/** Where the events of the last revision start (events come in revision order; a revision's are contiguous). */
function lastRevisionStart(events: Event[]): number {
  const last = events.at(-1)?.kv?.modRevision;
  let i = events.length;
  while (i > 0 && events[i - 1].kv?.modRevision === last) i--;
  return i;
}

function watchEvent(e: Event): WatchEvent {
  if (!e.kv) throw new Error(`etcd sent a ${e.type} event without its key`);
  return { type: e.type, ...keyValueRead(e.kv), ...(e.prevKv ? { prev: keyValueRead(e.prevKv) } : {}) };
}
