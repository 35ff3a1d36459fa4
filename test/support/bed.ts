import { readFileSync } from 'node:fs';
import { S3Client } from '@aws-sdk/client-s3';
import type { StorageConfig } from '../../src/config/schema';

export interface TestBedState {
  dir: string;
  temporalAddress: string;
  /** The dev server's web UI (http://127.0.0.1:<port>). */
  temporalUiUrl: string;
  minio: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string; pid: number };
}

/** The servers global-setup started for this jest worker (its lane: files on other workers use others). */
export function testBed(): TestBedState {
  const file = process.env.LIFEBOAT_TEST_BED;
  if (!file) throw new Error('LIFEBOAT_TEST_BED is not set: run tests through jest.config.js (its globalSetup starts the servers)');
  const lanes = JSON.parse(readFileSync(file, 'utf8')) as TestBedState[];
  const worker = Number(process.env.JEST_WORKER_ID ?? '1');
  return lanes[(worker - 1) % lanes.length];
}

/**
 * Storage config pointing at the test MinIO. Credentials go through environment variables, the way users reference
 * secrets, so tests exercise the same resolution path.
 */
export function minioStorage(bucket: string, prefix = 'lifeboat'): StorageConfig {
  const { minio } = testBed();
  process.env.LIFEBOAT_TEST_S3_ACCESS_KEY = minio.accessKeyId;
  process.env.LIFEBOAT_TEST_S3_SECRET_KEY = minio.secretAccessKey;
  return {
    bucket,
    prefix,
    region: minio.region,
    endpoint: minio.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: { env: 'LIFEBOAT_TEST_S3_ACCESS_KEY' }, secretAccessKey: { env: 'LIFEBOAT_TEST_S3_SECRET_KEY' } },
  };
}

export function minioClient(): S3Client {
  const { minio } = testBed();
  return new S3Client({
    endpoint: minio.endpoint,
    region: minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 60_000 },
  });
}
