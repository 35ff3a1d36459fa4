import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { BackupIntegrityError, readStoredObject } from '../../src/backup/read-object';
import { minioClient } from '../support/bed';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('readStoredObject (MinIO)', () => {
  const s3 = minioClient();
  const bucket = 'read-object';
  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  });
  afterAll(() => s3.destroy());

  it.each([
    ['longer', 10],
    ['shorter', -10],
  ])('refuses an object the bucket holds %s than its manifest says, naming both sizes, before reading it', async (_what, delta) => {
    const data = randomBytes(2 * 1024 * 1024);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'snap.db', Body: data }));
    const obj = {
      key: 'snap.db',
      plainSize: data.length + delta,
      plainSha256: sha256(data),
      storedSize: data.length + delta,
      storedSha256: sha256(data),
      compression: 'none' as const,
      encryption: null,
    };
    let written = 0;
    const sink = new Writable({
      write: (c: Buffer, _e, cb) => {
        written += c.length;
        cb();
      },
    });
    const err = await readStoredObject(s3, bucket, obj, () => undefined, sink).catch((e: Error) => e);
    expect(err).toBeInstanceOf(BackupIntegrityError);
    expect((err as Error).message).toContain(`the bucket holds ${data.length} bytes, the manifest says ${data.length + delta}`);
    expect(written).toBe(0);
  });
});
