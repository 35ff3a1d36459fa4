import type { S3Client } from '@aws-sdk/client-s3';
import { checkChain, type ChainEntry } from '../../src/continuous/chain';
import { listSegmentKeys, readSegment } from '../../src/continuous/segment-store';
import type { StorageConfig } from '../../src/config/schema';
import { waitFor } from '../../src/devserver/processes';
import { compareRevisions, type Revision } from '../../src/etcd/revision';

export interface ChainPlace {
  s3: S3Client;
  storage: Pick<StorageConfig, 'bucket' | 'prefix'>;
  cluster: string;
  chain: string;
  key: Buffer;
}

/** One chain as a restore sees it: every segment believed (readSegment), then the chain checked from its base. */
export async function readChain(p: ChainPlace) {
  const entries: ChainEntry[] = [];
  for (const k of await listSegmentKeys(p.s3, p.storage, p.cluster, p.chain))
    entries.push({ key: k, segment: await readSegment(p.s3, p.storage.bucket, k, async () => p.key) });
  const base = entries[0]?.segment.base ?? { manifestKey: '', revision: p.chain.replace(/.*-rev/, '') };
  const check = checkChain({ prefix: p.storage.prefix, cluster: p.cluster, chain: p.chain }, base, entries);
  return { base, entries, check, events: entries.flatMap((e) => e.segment.events) };
}

/** Waits until the chain proves every revision up to `revision`; fails naming the chain's problem. */
export function chainThrough(p: ChainPlace, revision: Revision) {
  return waitFor(
    `chain ${p.chain} to prove revision ${revision}`,
    async () => {
      const c = await readChain(p);
      if (c.check.problem) throw new Error(`chain ${p.chain}: ${c.check.problem.key}: ${c.check.problem.problem}`);
      return compareRevisions(c.check.provenThrough, revision) >= 0 ? c : undefined;
    },
    120_000,
    1000,
  );
}
