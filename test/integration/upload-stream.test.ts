import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { constants as zlibConstants, crc32, zstdCompressSync } from 'node:zlib';
import { compositeChecksum, parseChecksum } from '../../src/storage/checksum';
import { objectLockFor, uploadStream } from '../../src/storage/upload-stream';
import { streamToS3 } from '../../src/backup/stream-to-s3';
import { SnapshotHash } from '../../src/backup/snapshot-hash';
import { minioClient } from '../support/bed';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Uneven chunks, as an SSH channel or a cipher hands them over, so part boundaries fall inside chunks. */
function chunked(data: Buffer, sizes = [65_536, 1_000_003, 17, 3 * MiB + 5]): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length];
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

  const crc32Of = (b: Buffer) => {
    const d = Buffer.alloc(4);
    d.writeUInt32BE(crc32(b) >>> 0);
    return d;
  };

  it('stores a multi-part object byte for byte, and its composite CRC32 (of the parts as cut) is the one the store reports', async () => {
    const data = randomBytes(21 * MiB + 12_345);
    const up = await uploadStream({ s3, bucket, key: 'multi.bin', source: chunked(data), partSize: 5 * MiB, queueSize: 2 });
    expect(up.parts).toBe(5);
    expect(up.bytes).toBe(data.length);
    expect(up.sha256).toBe(sha256(data));
    const parts = [0, 1, 2, 3, 4].map((i) => crc32Of(data.subarray(i * 5 * MiB, (i + 1) * 5 * MiB)));
    expect(up.s3Checksum).toBe(`crc32:${compositeChecksum('CRC32', parts)}`);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'multi.bin', ChecksumMode: 'ENABLED' }));
    expect(head.ContentLength).toBe(data.length);
    expect(head.ChecksumCRC32).toBe(parseChecksum(up.s3Checksum).value);
    const got = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'multi.bin' }))).Body!.transformToByteArray());
    expect(sha256(got)).toBe(sha256(data));
  });

  it('with SHA-256 parts, the composite SHA-256 is the one the store reports', async () => {
    const data = randomBytes(11 * MiB);
    const up = await uploadStream({
      s3,
      bucket,
      key: 'multi-sha.bin',
      source: chunked(data),
      partSize: 5 * MiB,
      queueSize: 2,
      checksum: 'SHA256',
    });
    expect(parseChecksum(up.s3Checksum).algorithm).toBe('SHA256');
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'multi-sha.bin', ChecksumMode: 'ENABLED' }));
    expect(head.ChecksumSHA256).toBe(up.s3Checksum);
  });

  it('stores an object smaller than a part with one PutObject and its whole CRC32', async () => {
    const data = randomBytes(300_000);
    const up = await uploadStream({ s3, bucket, key: 'small.bin', source: chunked(data), partSize: 5 * MiB, queueSize: 2 });
    expect(up.parts).toBe(1);
    expect(up.s3Checksum).toBe(`crc32:${crc32Of(data).toString('base64')}`);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'small.bin', ChecksumMode: 'ENABLED' }));
    expect(head.ChecksumCRC32).toBe(parseChecksum(up.s3Checksum).value);
  });

  it('the store checks an unsigned payload against its CRC32 (what the uploader relies on), refusing one that does not match', async () => {
    const put = new PutObjectCommand({
      Bucket: bucket,
      Key: 'bad-crc.bin',
      Body: randomBytes(1000),
      ChecksumCRC32: crc32Of(Buffer.from('other bytes')).toString('base64'),
    });
    put.middlewareStack.add(
      (next) => (args) => {
        (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        return next(args);
      },
      { step: 'build', name: 'unsignedPayload' },
    );
    await expect(s3.send(put)).rejects.toThrow(/checksum|digest/i);
    await expect(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'bad-crc.bin' }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 404 },
    });
  });

  it('leaves no object and no unfinished multipart upload when the source fails half-way', async () => {
    async function* failing() {
      yield randomBytes(12 * MiB);
      throw new Error('the node went away');
    }
    await expect(uploadStream({ s3, bucket, key: 'broken.bin', source: failing(), partSize: 5 * MiB, queueSize: 2 })).rejects.toThrow(
      'the node went away',
    );
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'broken.bin' }));
    expect(uploads.Uploads ?? []).toHaveLength(0);
    await expect(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'broken.bin' }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 404 },
    });
  });

  it('a source stopped without an error before its last bytes were read fails the upload (it hung before): nothing stored', async () => {
    // All of it pushed, its end too, as an SSH channel's last window arrives before the consumer reads it; then a
    // caller stops it without a reason once the first part is in the store.
    const source = new Readable({ read: () => undefined });
    const data = randomBytes(16 * MiB);
    for (let at = 0; at < data.length; at += 256 * 1024) source.push(data.subarray(at, at + 256 * 1024));
    source.push(null);
    const stored = streamToS3({ s3, bucket, key: 'stopped.bin.gz', source, compression: 'gzip', afterPart: () => source.destroy() });
    let hung: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      stored.then(
        () => 'stored',
        (err: Error) => err.message,
      ),
      new Promise<string>((resolve) => (hung = setTimeout(() => resolve('still running after 30 s'), 30_000))),
    ]);
    clearTimeout(hung);
    expect(outcome).toBe('the source of stopped.bin.gz was stopped before its end, without a reason; nothing was stored');
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'stopped.bin' }));
    expect(uploads.Uploads ?? []).toHaveLength(0);
    await expect(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'stopped.bin.gz' }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 404 },
    });
  });

  it('sets object-lock retention, and the store then refuses to delete that version', async () => {
    const locked = 'upload-stream-locked';
    await s3.send(new CreateBucketCommand({ Bucket: locked, ObjectLockEnabledForBucket: true }));
    const lock = objectLockFor({ objectLock: { mode: 'GOVERNANCE', days: 2 } })!;
    await uploadStream({
      s3,
      bucket: locked,
      key: 'worm.bin',
      source: chunked(randomBytes(7 * MiB)),
      partSize: 5 * MiB,
      queueSize: 2,
      objectLock: lock,
    });
    const head = await s3.send(new HeadObjectCommand({ Bucket: locked, Key: 'worm.bin' }));
    expect(head.ObjectLockMode).toBe('GOVERNANCE');
    expect(Math.abs(head.ObjectLockRetainUntilDate!.getTime() - lock.retainUntil.getTime())).toBeLessThan(2000);
    await expect(s3.send(new DeleteObjectCommand({ Bucket: locked, Key: 'worm.bin', VersionId: head.VersionId }))).rejects.toThrow(
      /retention|WORM|locked|AccessDenied/i,
    );
  });

  describe("an etcd snapshot's trailer (its SHA-256 of the rest) decides whether the object is completed", () => {
    /** Bytes as etcd streams a snapshot: a database, then the SHA-256 of it. */
    const snapshot = (() => {
      const db = randomBytes(12 * MiB + 77);
      return Buffer.concat([db, createHash('sha256').update(db).digest()]);
    })();
    const keyOf = (name: string) => `trailer/${name}.db.gz`;
    const store = (name: string, bytes: Buffer) =>
      streamToS3({ s3, bucket, key: keyOf(name), source: chunked(bytes), compression: 'gzip', etcdSnapshotFrom: 'the test' });
    const head = (name: string) => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: keyOf(name) }));
    const unfinished = async () =>
      ((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'trailer/' }))).Uploads ?? []).length;

    it('a whole snapshot is stored, its SHA-256 computed in the same pass', async () => {
      const stored = await store('whole', snapshot);
      expect(stored.plainSha256).toBe(sha256(snapshot));
      await expect(head('whole')).resolves.toBeDefined();
      const h = new SnapshotHash();
      for (const piece of [snapshot.subarray(0, 20), snapshot.subarray(20, 50), snapshot.subarray(50)]) h.update(piece);
      expect([h.sha256(), h.endsWithEtcdTrailer()]).toEqual([sha256(snapshot), true]);
    });

    it.each([
      [
        'altered',
        () => {
          const altered = Buffer.from(snapshot);
          altered[7 * MiB] ^= 0xff; // a different byte, whatever it was
          return altered;
        },
      ],
      ['cut short', () => snapshot.subarray(0, 9 * MiB)],
    ])('one %s is refused: nothing stored, the multipart aborted', async (name, bytes) => {
      await expect(store(name, bytes())).rejects.toThrow(/do not end with etcd's SHA-256 of them: cut short or altered/);
      await expect(head(name)).rejects.toMatchObject({ name: 'NotFound' });
      expect(await unfinished()).toBe(0);
    });

    it('one compressed on the node and cut mid-frame (its session dropped) is refused: nothing stored, the multipart aborted', async () => {
      const compressed = zstdCompressSync(snapshot, { params: { [zlibConstants.ZSTD_c_compressionLevel]: 1 } });
      const cut = compressed.subarray(0, Math.floor(compressed.length * 0.7));
      const stored = streamToS3({
        s3,
        bucket,
        key: keyOf('cut-frame'),
        source: chunked(cut),
        compression: 'zstd',
        arrivesCompressed: true,
        encryption: { key: randomBytes(32), keyId: 'k1' },
        etcdSnapshotFrom: 'the test',
      });
      await expect(stored).rejects.toThrow(/does not decode/);
      expect(await unfinished()).toBe(0);
    });
  });
});
