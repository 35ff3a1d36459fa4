import {
  GetBucketLifecycleConfigurationCommand,
  PutBucketLifecycleConfigurationCommand,
  type LifecycleRule,
  type S3Client,
} from '@aws-sdk/client-s3';
import { clusterBackupPrefix } from './object-keys';
import type { ClusterConfig } from '../config/schema';

export const RULE_PREFIX = 'lifeboat-';

/**
 * The lifecycle rules a cluster's config asks for. Transitions skip objects under 128 KiB, so the small manifests
 * stay in a class that can be read at once: listing and choosing a backup must never wait for a Glacier restore.
 */
export function lifecycleRulesFor(cluster: ClusterConfig): LifecycleRule[] {
  const lc = cluster.storage.lifecycle;
  if (!lc) return [];
  const prefix = clusterBackupPrefix(cluster.storage.prefix, cluster.name);
  const rules: LifecycleRule[] = [
    {
      ID: `${RULE_PREFIX}${cluster.name}-expire`,
      Status: 'Enabled',
      Filter: { Prefix: prefix },
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: lc.abortIncompleteUploadsAfterDays },
      ...(lc.expireAfterDays ? { Expiration: { Days: lc.expireAfterDays } } : {}),
    },
  ];
  if (lc.transitionAfterDays) {
    rules.push({
      ID: `${RULE_PREFIX}${cluster.name}-transition`,
      Status: 'Enabled',
      Filter: { And: { Prefix: prefix, ObjectSizeGreaterThan: 128 * 1024 } },
      Transitions: [{ Days: lc.transitionAfterDays, StorageClass: lc.storageClass }],
    });
  }
  return rules;
}

export async function getLifecycleRules(s3: S3Client, bucket: string): Promise<LifecycleRule[]> {
  try {
    return (await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))).Rules ?? [];
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchLifecycleConfiguration') return [];
    throw err;
  }
}

/**
 * Writes this cluster's rules into the bucket's lifecycle configuration. S3 replaces the whole configuration on
 * every write, so rules that are not this cluster's (other clusters, other tools) are read first and kept.
 */
export async function applyLifecycle(s3: S3Client, cluster: ClusterConfig): Promise<{ rules: LifecycleRule[]; kept: string[] }> {
  const ours = lifecycleRulesFor(cluster);
  const mine = (id?: string) => id === `${RULE_PREFIX}${cluster.name}-expire` || id === `${RULE_PREFIX}${cluster.name}-transition`;
  const others = (await getLifecycleRules(s3, cluster.storage.bucket)).filter((r) => !mine(r.ID));
  const rules = [...others, ...ours];
  await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: cluster.storage.bucket, LifecycleConfiguration: { Rules: rules } }));
  return { rules: ours, kept: others.map((r) => r.ID ?? '(unnamed)') };
}
