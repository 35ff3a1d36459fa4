import { unaryCall, type EtcdClient } from '../etcd/grpc/client';
import type { LeaseGrantResponse, RequestOp, TxnResponse } from '../etcd/grpc/proto';
import { status } from '../etcd/grpc/status';
import { compareRevisions, type Revision } from '../etcd/revision';
import type { Segment, SegmentEvent } from './segment';

/**
 * Replays a chain's segments into an etcd restored from the chain's base (a throwaway one, off the control plane), so
 * that it ends exactly at a chosen revision: one transaction per revision with that revision's events in their order,
 * so every key gets back its create revision, mod revision and version, and the etcd's revision is asserted after
 * each one. Revisions the etcd already holds are skipped in every segment, not only the first (gardener's issue
 * 1044). Keys that were put under a lease (Kubernetes Events) are replayed under a lease of the same id, granted
 * here for `leaseTtlSeconds`: they expire as they would have, never become immortal.
 */
export interface ReplayReport {
  /** The etcd's revision before the replay (the base's). */
  fromRevision: Revision;
  toRevision: Revision;
  revisions: number;
  events: number;
  segments: number;
  /** Keys replayed under leases, the leases granted, and their time to live. */
  leased: { keys: number; leases: number; ttlSeconds: number };
}

export class ReplayMismatch extends Error {
  constructor(
    readonly segmentKey: string,
    message: string,
  ) {
    super(`replaying ${segmentKey}: ${message}`);
    this.name = 'ReplayMismatch';
  }
}

export interface Replayer {
  /** Applies a segment's revisions up to the target; false once the target is reached (no more segments needed). */
  add(key: string, segment: Segment): Promise<boolean>;
  /** The report; throws when the target was not reached. */
  finish(): ReplayReport;
}

export async function replayer(
  client: EtcdClient,
  target: Revision,
  options: { leaseTtlSeconds: number; onRevision?: (r: Revision) => void },
): Promise<Replayer> {
  const fromRevision = (await status(client)).revision;
  let current = fromRevision;
  let revisions = 0;
  let events = 0;
  let segments = 0;
  let leasedKeys = 0;
  const leases = new Set<string>();

  const ensureLease = async (id: string) => {
    if (leases.has(id)) return;
    try {
      await unaryCall<LeaseGrantResponse>(client, 'LeaseGrant', (md, o, cb) =>
        client.lease.LeaseGrant({ TTL: String(options.leaseTtlSeconds), ID: id }, md, o, cb),
      );
    } catch (err) {
      // Restored with the base: the lease is there already, with its own time to live.
      if (!/lease already exists/.test((err as Error).message)) throw err;
    }
    leases.add(id);
  };

  const apply = async (key: string, revision: Revision, batch: SegmentEvent[]) => {
    const ops: RequestOp[] = [];
    for (const e of batch) {
      const k = Buffer.from(e.key, 'base64');
      if (e.type === 'delete') ops.push({ requestDeleteRange: { key: k } });
      else {
        if (e.lease) {
          await ensureLease(e.lease);
          leasedKeys++;
        }
        ops.push({ requestPut: { key: k, value: Buffer.from(e.value ?? '', 'base64'), ...(e.lease ? { lease: e.lease } : {}) } });
      }
    }
    const res = await unaryCall<TxnResponse>(client, 'Txn', (md, o, cb) => client.kv.Txn({ success: ops }, md, o, cb));
    const got = res.header?.revision;
    if (got !== revision)
      throw new ReplayMismatch(key, `revision ${revision} replayed as ${got}: the etcd it replays into is not at the chain's place`);
    current = revision;
    revisions++;
    events += batch.length;
    options.onRevision?.(revision);
  };

  return {
    async add(key, segment) {
      segments++;
      let batch: SegmentEvent[] = [];
      let at: Revision | undefined;
      for (const e of segment.events) {
        if (e.modRevision !== at) {
          if (batch.length && at) await apply(key, at, batch);
          batch = [];
          at = e.modRevision;
          if (compareRevisions(at, target) > 0) return false;
        }
        // Already in the etcd (the base, or a segment that overlapped it): skipped, in every segment.
        if (compareRevisions(e.modRevision, current) <= 0) continue;
        batch.push(e);
      }
      if (batch.length && at) await apply(key, at, batch);
      const expected = compareRevisions(segment.lastRevision, target) < 0 ? segment.lastRevision : target;
      if (compareRevisions(current, expected) < 0 && compareRevisions(segment.lastRevision, current) > 0)
        throw new ReplayMismatch(key, `the etcd is at revision ${current} after it, not ${expected}`);
      return compareRevisions(current, target) < 0;
    },
    finish() {
      if (current !== target) throw new Error(`the replay ended at revision ${current}, before the point ${target}: segments are missing`);
      return {
        fromRevision,
        toRevision: current,
        revisions,
        events,
        segments,
        leased: { keys: leasedKeys, leases: leases.size, ttlSeconds: options.leaseTtlSeconds },
      };
    },
  };
}
