import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { parseManifest, type BackupManifest } from './manifest';
import { clusterBackupPrefix } from './object-keys';
import type { StorageConfig } from '../config/schema';
import { s3ClientFor } from '../storage/s3-client';

export interface CatalogEntry {
  manifestKey: string;
  manifest?: BackupManifest;
  /** Why the manifest could not be used, when it could not. */
  problem?: string;
}

export interface ListedObject {
  key: string;
  size: number;
  lastModified?: Date;
}

export async function listObjects(s3: S3Client, bucket: string, prefix: string): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

export async function readManifest(s3: S3Client, bucket: string, key: string): Promise<BackupManifest> {
  return parseManifest(key, await readManifestText(s3, bucket, key));
}

/** A manifest's bytes as stored, for checking its tag (src/backup/manifest-auth.ts). */
export async function readManifestText(s3: S3Client, bucket: string, key: string): Promise<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return res.Body!.transformToString('utf8');
}

/** readManifest with a client of its own, for callers that need nothing else from the bucket. */
export async function readBackupManifest(storage: StorageConfig, key: string): Promise<BackupManifest> {
  const s3 = await s3ClientFor(storage);
  try {
    return await readManifest(s3, storage.bucket, key);
  } finally {
    s3.destroy();
  }
}

/** Every backup of a cluster, newest first, read from its manifests (a backup without a manifest is not a backup). */
export async function listBackups(s3: S3Client, bucket: string, prefix: string, cluster: string): Promise<CatalogEntry[]> {
  const objects = await listObjects(s3, bucket, clusterBackupPrefix(prefix, cluster));
  const manifests = objects.filter((o) => o.key.endsWith('.manifest.json')).map((o) => o.key);
  const entries: CatalogEntry[] = [];
  for (let i = 0; i < manifests.length; i += 16) {
    entries.push(
      ...(await Promise.all(
        manifests.slice(i, i + 16).map(async (manifestKey): Promise<CatalogEntry> => {
          try {
            return { manifestKey, manifest: await readManifest(s3, bucket, manifestKey) };
          } catch (err) {
            return { manifestKey, problem: (err as Error).message };
          }
        }),
      )),
    );
  }
  return entries.sort((a, b) => b.manifestKey.localeCompare(a.manifestKey));
}
