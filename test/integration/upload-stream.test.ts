import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { objectLockFor, uploadStream } from '../../src/storage/upload-stream';
import { minioClient } from '../support/bed';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Uneven chunks, as an SSH channel or a cipher hands them over, so part boundaries fall inside chunks. */
function chunked(data: Buffer, sizes = [65_536, 1_000_003, 17, 3 * MiB + 5]): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    pieces.push(data.subarray(at, at + n));
    at += n;
  }
  return Readable.from(pieces);
}

describe('uploadStream (MinIO)', () => {
  const s3 = minioClient();
  const bucket = 'upload-stream';
  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  });
  afterAll(() => s3.destroy());

  it('stores a multi-part object byte for byte, and its composite checksum is the one the store reports', async () => {
    const data = randomBytes(21 * MiB + 12_345);
    const up = await uploadStream({ s3, bucket, key: 'multi.bin', source: chunked(data), partSize: 5 * MiB, queueSize: 2 });
    expect(up.parts).toBe(5);
    expect(up.bytes).toBe(data.length);
    expect(up.sha256).toBe(sha256(data));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'multi.bin', ChecksumMode: 'ENABLED' }));
    expect(head.ContentLength).toBe(data.length);
    expect(head.ChecksumSHA256).toBe(up.s3Checksum);
    const got = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'multi.bin' }))).Body!.transformToByteArray());
    expect(sha256(got)).toBe(sha256(data));
  });

  it('stores an object smaller than a part with one PutObject and its plain SHA-256 checksum', async () => {
    const data = randomBytes(300_000);
    const up = await uploadStream({ s3, bucket, key: 'small.bin', source: chunked(data), partSize: 5 * MiB, queueSize: 2 });
    expect(up.parts).toBe(1);
    expect(up.s3Checksum).toBe(createHash('sha256').update(data).digest('base64'));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'small.bin', ChecksumMode: 'ENABLED' }));
    expect(head.ChecksumSHA256).toBe(up.s3Checksum);
  });

  it('leaves no object and no unfinished multipart upload when the source fails half-way', async () => {
    async function* failing() {
      yield randomBytes(12 * MiB);
      throw new Error('the node went away');
    }
    await expect(uploadStream({ s3, bucket, key: 'broken.bin', source: failing(), partSize: 5 * MiB, queueSize: 2 })).rejects.toThrow('the node went away');
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'broken.bin' }));
    expect(uploads.Uploads ?? []).toHaveLength(0);
    await expect(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'broken.bin' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
  });

  it('sets object-lock retention, and the store then refuses to delete that version', async () => {
    const locked = 'upload-stream-locked';
    await s3.send(new CreateBucketCommand({ Bucket: locked, ObjectLockEnabledForBucket: true }));
    const lock = objectLockFor({ objectLock: { mode: 'GOVERNANCE', days: 2 } })!;
    await uploadStream({ s3, bucket: locked, key: 'worm.bin', source: chunked(randomBytes(7 * MiB)), partSize: 5 * MiB, queueSize: 2, objectLock: lock });
    const head = await s3.send(new HeadObjectCommand({ Bucket: locked, Key: 'worm.bin' }));
    expect(head.ObjectLockMode).toBe('GOVERNANCE');
    expect(Math.abs(head.ObjectLockRetainUntilDate!.getTime() - lock.retainUntil.getTime())).toBeLessThan(2000);
    await expect(s3.send(new DeleteObjectCommand({ Bucket: locked, Key: 'worm.bin', VersionId: head.VersionId }))).rejects.toThrow(/retention|WORM|locked|AccessDenied/i);
  });
});
