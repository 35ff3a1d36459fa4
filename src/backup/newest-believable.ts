import type { S3Client } from '@aws-sdk/client-s3';
import { listObjects, readManifestText, type ListedObject } from './catalog';
import { authenticateManifest } from './manifest-auth';
import { parseManifest, type BackupManifest } from './manifest';
import { clusterBackupPrefix } from './object-keys';
import type { StorageConfig } from '../config/schema';

export interface BelievableManifest {
  manifestKey: string;
  manifest: BackupManifest;
  /** Newer manifests that were not believed, each with why. */
  passedOver: string[];
}

/**
 * The newest backup of a cluster whose manifest reads and can be believed: its tag matches under a key of the ring
 * (unsigned counts only where the cluster has no encryption key, so nothing to sign with), and it is this cluster's.
 * Its revision is the floor etcd cannot fall below: whoever can write to the bucket must not be able to raise it (a
 * false "etcd lost its data", which an alert may answer with a restore) or lower it (a wiped etcd's backup let
 * through), so a manifest that fails is passed over, as a recovery of "latest" passes it over. Keys sort by time.
 * `objects`: the cluster's listing when the caller has it already.
 */
export async function newestBelievableManifest(
  s3: S3Client,
  storage: StorageConfig,
  cluster: { name: string; signsManifests: boolean },
  loadKey: (keyId: string) => Promise<Buffer>,
  objects?: ListedObject[],
): Promise<BelievableManifest | undefined> {
  const passedOver: string[] = [];
  const listed = objects ?? (await listObjects(s3, storage.bucket, clusterBackupPrefix(storage.prefix, cluster.name)));
  const manifests = listed
    .map((o) => o.key)
    .filter((k) => k.endsWith('.manifest.json'))
    .sort((a, b) => b.localeCompare(a));
  for (const key of manifests) {
    let text: string;
    try {
      text = await readManifestText(s3, storage.bucket, key);
    } catch (err) {
      // Gone since the listing (retention deleted it meanwhile): the next one. Any other bucket error is the caller's.
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 404) throw err;
      continue;
    }
    const auth = await authenticateManifest(text, loadKey);
    const believable = auth.status === 'authentic' || (auth.status === 'unsigned' && !cluster.signsManifests);
    if (!believable) {
      passedOver.push(`${key}: ${auth.status === 'unsigned' ? 'not signed' : auth.reason}`);
      continue;
    }
    try {
      const manifest = parseManifest(key, text);
      if (manifest.cluster !== cluster.name) {
        passedOver.push(`${key}: a backup of cluster "${manifest.cluster}"`);
        continue;
      }
      return { manifestKey: key, manifest, passedOver };
    } catch (err) {
      passedOver.push(`${key}: ${(err as Error).message}`);
    }
  }
  return undefined;
}
