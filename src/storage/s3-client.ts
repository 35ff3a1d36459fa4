import { S3Client } from '@aws-sdk/client-s3';
import type { StorageConfig } from '../config/schema';
import { resolveSecret } from '../secrets';

/**
 * An S3 client for a cluster's storage location. Credentials are resolved here, inside the activity, from the
 * references in config (or the AWS default chain), so they never pass through a workflow.
 */
export async function s3ClientFor(storage: StorageConfig, field = 'storage'): Promise<S3Client> {
  const creds = storage.credentials;
  let credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  if (creds && 'accessKeyId' in creds) {
    credentials = {
      accessKeyId: (await resolveSecret(creds.accessKeyId, `${field}.credentials.accessKeyId`)).toString('utf8').trim(),
      secretAccessKey: (await resolveSecret(creds.secretAccessKey, `${field}.credentials.secretAccessKey`)).toString('utf8').trim(),
    };
  }
  return new S3Client({
    region: storage.region,
    endpoint: storage.endpoint,
    forcePathStyle: storage.forcePathStyle,
    credentials,
    profile: creds && 'profile' in creds ? creds.profile : undefined,
    maxAttempts: 5,
    // A store that stops answering (a host gone without a reset, a firewall that drops packets) leaves a request
    // waiting on a silent socket: these make it fail, so the attempt ends and is retried. (They were added while the
    // upload hang on Node 22/24 was being chased; that was the SSH channel, see streamOnNode, but the bound is sound.)
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 60_000 },
  });
}

/** s3://bucket/prefix — how a location is named in messages and results (never with credentials). */
export function describeLocation(storage: StorageConfig): string {
  return `s3://${storage.bucket}/${storage.prefix}${storage.endpoint ? ` at ${storage.endpoint}` : ''}`;
}
