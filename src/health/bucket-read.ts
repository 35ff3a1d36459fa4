import type { S3Client } from '@aws-sdk/client-s3';
import type { StorageConfig } from '../config/schema';
import { describeLocation, s3ClientFor } from '../storage/s3-client';

/**
 * A health check's read of the bucket, bounded: rejects naming the store after `timeoutMs`, so a store that does not
 * answer is in the report instead of holding the check up. The client is the check's own and closed after.
 */
export async function readBucket<T>(storage: StorageConfig, timeoutMs: number, read: (s3: S3Client) => Promise<T>): Promise<T> {
  const s3 = await s3ClientFor(storage);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer from ${describeLocation(storage)} within ${Math.round(timeoutMs / 1000)} s`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([read(s3), timeout]);
  } finally {
    clearTimeout(timer);
    s3.destroy();
  }
}
