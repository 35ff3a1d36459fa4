import { HeadObjectCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { streamToS3 } from '../../src/backup/stream-to-s3';
import { serverBinaries } from '../../src/devserver/binaries';
import { startMinio, type MinioServer } from '../../sandbox/minio';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** Incompressible data, in the 1 MiB pieces a file read hands over. */
function data(mib: number): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < mib; i++) yield randomBytes(MiB);
    })(),
  );
}

describe('a bucket whose store runs out of space', () => {
  let dir: string;
  let minio: MinioServer;
  let s3: S3Client;

  beforeAll(async () => {
    // MinIO on a small tmpfs of its own: it refuses writes once the drive is (nearly) full.
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-full-'));
    await mkdir(join(dir, 'data'));
    await run('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', join(dir, 'data')]);
    minio = await startMinio((await serverBinaries()).minio, join(dir, 'data'));
    await minio.createBucket('full');
    s3 = minio.client();
  });
  afterAll(async () => {
    s3?.destroy();
    await minio?.stop();
    await run('umount', [join(dir, 'data')]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['plain', undefined],
    ['encrypted', { key: randomBytes(32), keyId: 'k' }],
  ])(
    "fails a %s upload with the store's own error (not a stream teardown) and leaves no object or multipart upload",
    async (_name, encryption) => {
      const err = await streamToS3({ s3, bucket: 'full', key: 'big.db', source: data(160), compression: 'none', encryption }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).name).not.toBe('AbortError');
      // The store's refusal; or, when MinIO answers a part early and closes while its body is still being sent (it
      // does under load), the connection the store reset. Either is the store's doing, never our own stream teardown.
      expect(String((err as Error).message)).toMatch(/space|storage|full|minimum free|ECONNRESET|EPIPE/i);
      expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'full' }))).Uploads ?? []).toHaveLength(0);
      await expect(s3.send(new HeadObjectCommand({ Bucket: 'full', Key: 'big.db' }))).rejects.toMatchObject({
        $metadata: { httpStatusCode: 404 },
      });
    },
  );
});
