/**
 * Keys per resource under /registry/<resource>/ at one revision, as a backup's manifest records them (the same
 * figures `registryCountCommand` computes from `etcdctl get --keys-only` on a node), read without moving the keys:
 * one keys-only Range of limit 1 finds the next resource, one count_only Range counts it, then the scan skips past
 * it. Two small calls per resource, whatever the number of keys.
 */
import type { Revision } from '../revision';
import type { EtcdClient } from './client';
import { countKeys, firstKeyIn, prefixEnd } from './range';

const REGISTRY = Buffer.from('/registry/');

/** At `revision`, or the newest when omitted. */
export async function countPerResource(client: EtcdClient, revision?: Revision): Promise<Record<string, number>> {
  const end = prefixEnd(REGISTRY);
  const counts: Record<string, number> = {};
  let from: Buffer = REGISTRY;
  for (;;) {
    const key = await firstKeyIn(client, from, end, { revision });
    if (!key) break;
    const rest = key.subarray(REGISTRY.length);
    const slash = rest.indexOf(0x2f);
    if (slash < 0) {
      // "/registry/<name>" itself, no folder: one key of that name (as the node's awk counts it); scan on just after it.
      const name = rest.toString('utf8');
      if (name) counts[name] = (counts[name] ?? 0) + 1;
      from = Buffer.concat([key, Buffer.from([0])]);
      continue;
    }
    const folder = key.subarray(0, REGISTRY.length + slash + 1);
    const name = rest.subarray(0, slash).toString('utf8');
    if (name) counts[name] = (counts[name] ?? 0) + (await countKeys(client, folder, { revision })).count;
    from = prefixEnd(folder);
  }
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}
