/**
 * Reads at a revision: one key (to check a restored or watched value) and a count under a prefix (to compare what a
 * backup holds with the live cluster at the same revision, without moving the values).
 */
import { toRevision, type Revision } from '../revision';
import { unaryCall, type EtcdClient } from './client';
import type { KeyValue, RangeRequest, RangeResponse } from './proto';

export interface ReadOptions {
  /** Read at this revision; the newest when omitted. A compacted revision fails (etcd: "required revision has been compacted"). */
  revision?: Revision;
}

export interface KeyValueRead {
  key: Buffer;
  value: Buffer;
  createRevision: Revision;
  modRevision: Revision;
  version: string;
  lease: string;
}

export const keyValueRead = (kv: KeyValue): KeyValueRead => ({
  key: kv.key,
  value: kv.value,
  createRevision: toRevision(kv.createRevision, 'kv.create_revision'),
  modRevision: toRevision(kv.modRevision, 'kv.mod_revision'),
  version: kv.version,
  lease: kv.lease,
});

function range(client: EtcdClient, request: RangeRequest, opts: ReadOptions): Promise<RangeResponse> {
  const revision = opts.revision === undefined ? undefined : toRevision(opts.revision, 'revision');
  return unaryCall<RangeResponse>(client, 'Range', (md, o, cb) => client.kv.Range({ ...request, revision }, md, o, cb));
}

/** The key's value, or undefined when it does not exist (at that revision). */
export async function getKey(
  client: EtcdClient,
  key: Buffer | string,
  opts: ReadOptions = {},
): Promise<{ kv?: KeyValueRead; revision: Revision }> {
  const res = await range(client, { key: Buffer.from(key) }, opts);
  const kv = res.kvs[0];
  return { kv: kv && keyValueRead(kv), revision: toRevision(res.header?.revision, 'Range header.revision') };
}

/** The number of keys starting with `prefix` ("" counts every key), and the revision it was counted at. */
export async function countKeys(
  client: EtcdClient,
  prefix: Buffer | string,
  opts: ReadOptions = {},
): Promise<{ count: number; revision: Revision }> {
  const key = Buffer.from(prefix);
  const res = await range(client, { key: key.length ? key : Buffer.from([0]), rangeEnd: prefixEnd(key), countOnly: true }, opts);
  return { count: Number(res.count), revision: toRevision(res.header?.revision, 'Range header.revision') };
}

/** The first key in [from, rangeEnd), or undefined when there is none (keys only: no value crosses the wire). */
export async function firstKeyIn(client: EtcdClient, from: Buffer, rangeEnd: Buffer, opts: ReadOptions = {}): Promise<Buffer | undefined> {
  const res = await range(client, { key: from, rangeEnd, limit: '1', keysOnly: true }, opts);
  return res.kvs[0]?.key;
}

/** etcd's range end for a prefix: the prefix with its last byte below 0xff incremented; "\0" (every key) for none. */
export function prefixEnd(prefix: Buffer): Buffer {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i]++;
      return end;
    }
  }
  return Buffer.from([0]);
}
