import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { testBed, minioClient } from '../support/bed';
import { startMinio } from '../../sandbox/minio';
import { serverBinaries } from '../../src/devserver/binaries';

describe('MinIO (real S3 API on loopback)', () => {
  it('round-trips an object byte for byte through the AWS SDK', async () => {
    const s3 = minioClient();
    try {
      const bucket = 'smoke-minio';
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const body = randomBytes(256 * 1024);
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'round/trip.bin', Body: body }));
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'round/trip.bin' }));
      const bytes = Buffer.from(await got.Body!.transformToByteArray());
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'round/trip.bin' }));
    } finally {
      s3.destroy();
    }
  });

  it('refuses wrong credentials', async () => {
    const { minio } = testBed();
    const s3 = new S3Client({
      endpoint: minio.endpoint,
      region: minio.region,
      forcePathStyle: true,
      credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: 'wrong-secret-key' },
    });
    await expect(s3.send(new ListBucketsCommand({}))).rejects.toThrow(/signature|SignatureDoesNotMatch/i);
    s3.destroy();
  });

  it('can be stopped and restarted on the same port with its data (for outage tests)', async () => {
    const { dir } = testBed();
    const bins = await serverBinaries();
    const server = await startMinio(bins.minio, `${dir}/minio-restart`);
    try {
      await server.createBucket('keep');
      await server.stop();
      await server.restart();
      const s3 = server.client();
      await expect(s3.send(new HeadBucketCommand({ Bucket: 'keep' }))).resolves.toBeDefined();
      s3.destroy();
    } finally {
      await server.stop();
    }
  });
});
