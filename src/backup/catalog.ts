import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { parseManifest, type BackupManifest } from './manifest';

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
