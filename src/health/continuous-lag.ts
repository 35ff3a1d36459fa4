import type { S3Client } from '@aws-sdk/client-s3';
import { clusterBackupPrefix } from '../backup/object-keys';
import type { ClusterConfig } from '../config/schema';
import { readChainTip } from '../continuous/capture';
import { chainBaseTime } from '../continuous/segment';
import { listChainIds } from '../continuous/segment-store';
import { compareRevisions, type Revision } from '../etcd/revision';
import { readBucket } from './bucket-read';
import type { HealthReport } from './types';

/**
 * Past this many seconds behind, the health check names the lag as a problem: the threshold of the shipped alert
 * LifeboatContinuousBackupLagging (deploy/prometheus/lifeboat.rules.yml), so the check and the alert agree.
 */
export const CONTINUOUS_LAG_PROBLEM_SECONDS = 120;

/**
 * How far a cluster's continuous backups are behind, from the bucket alone (the health check needs no Temporal): the
 * newest chain's newest segment, believed as a restore believes it. When etcd's revision (read by the same check) is
 * not past that segment's, nothing is missing and the lag is 0, however old the segment (a quiet keyspace writes no
 * segments); otherwise the lag is the segment's age, what a recovery now would lose.
 */
export async function continuousLag(
  cluster: Pick<ClusterConfig, 'name' | 'storage'>,
  loadKey: (keyId: string) => Promise<Buffer>,
  etcdRevision: Revision | undefined,
  now: Date,
  timeoutMs: number,
): Promise<NonNullable<HealthReport['continuous']>> {
  return readBucket(cluster.storage, timeoutMs, (s3) => lagOf(s3, cluster, loadKey, etcdRevision, now));
}

async function lagOf(
  s3: S3Client,
  cluster: Pick<ClusterConfig, 'name' | 'storage'>,
  loadKey: (keyId: string) => Promise<Buffer>,
  etcdRevision: Revision | undefined,
  now: Date,
): Promise<NonNullable<HealthReport['continuous']>> {
  const chains = await listChainIds(s3, cluster.storage, cluster.name);
  const chain = chains.at(-1);
  if (!chain) return { problem: 'no chain of segments in the bucket yet (the capture starts one from a full backup)' };
  const base = {
    manifestKey: `${clusterBackupPrefix(cluster.storage.prefix, cluster.name)}${chain}.manifest.json`,
    revision: chain.replace(/^.*-rev/, ''),
  };
  const tip = await readChainTip(s3, cluster.storage, cluster.name, chain, base, loadKey);
  const at = tip.at ?? chainBaseTime(chain);
  const caughtUp = etcdRevision !== undefined && compareRevisions(etcdRevision, tip.lastRevision) <= 0;
  const lagSeconds = caughtUp ? 0 : Math.max(0, Math.round((now.getTime() - Date.parse(at)) / 1000));
  return {
    chain,
    durableThrough: tip.lastRevision,
    at,
    lagSeconds,
    ...(etcdRevision === undefined ? { lagIsUpperBound: true } : {}),
    ...(lagSeconds > CONTINUOUS_LAG_PROBLEM_SECONDS
      ? {
          problem: `${lagSeconds} s behind: etcd is at revision ${etcdRevision ?? 'unknown'}, the bucket holds changes through ${tip.lastRevision} (seen ${at}); check the capture-${cluster.name} workflow's last failure`,
        }
      : {}),
  };
}
