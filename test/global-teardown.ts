import { rm } from 'node:fs/promises';
import type { DevServer } from '../src/devserver/temporal';
import type { MinioServer } from '../sandbox/minio';

export default async function globalTeardown(): Promise<void> {
  const bed = (globalThis as Record<string, unknown>).__lifeboatTestBed as
    { temporal: DevServer; minio: MinioServer; dir: string } | undefined;
  if (!bed) return;
  await Promise.all([bed.temporal.stop(), bed.minio.stop()]);
  if (!process.env.LIFEBOAT_KEEP_SANDBOX) await rm(bed.dir, { recursive: true, force: true });
}
