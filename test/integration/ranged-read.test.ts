import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { BackupIntegrityError, readStoredObject } from '../../src/backup/read-object';
import { ObjectSizeMismatch, readObjectRanged } from '../../src/storage/ranged-read';
import { minioClient } from '../support/bed';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

describe('readObjectRanged (MinIO)', () => {
  const s3 = minioClient();
  const bucket = 'ranged-read';
  const put = (key: string, body: Buffer) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  });
  afterAll(() => s3.destroy());

  it.each([
    ['several parts and a short last one', 5 * MiB + 12_345],
    ['an exact multiple of the part size', 4 * MiB],
    ['one part (a plain GET)', MiB],
    ['less than a part', 777],
    ['an empty object', 0],
  ])('returns %s byte for byte, in order', async (_what, size) => {
    const data = randomBytes(size);
    await put(`obj-${size}`, data);
    const got = await collect(readObjectRanged(s3, bucket, `obj-${size}`, size, { partSize: MiB, concurrency: 3 }));
    expect(got.length).toBe(size);
    expect(sha256(got)).toBe(sha256(data));
  });

  it('fails with ObjectSizeMismatch when the object is not the size it was said to be (ranged and plain)', async () => {
    await put('sized', randomBytes(3 * MiB));
    await expect(collect(readObjectRanged(s3, bucket, 'sized', 3 * MiB - 1, { partSize: MiB }))).rejects.toMatchObject({
      name: 'ObjectSizeMismatch',
      actual: 3 * MiB,
      expected: 3 * MiB - 1,
    });
    await expect(collect(readObjectRanged(s3, bucket, 'sized', 3 * MiB + 1, { partSize: 8 * MiB }))).rejects.toBeInstanceOf(
      ObjectSizeMismatch,
    );
  });

  it('fails when the object is replaced mid-read, instead of splicing two objects', async () => {
    const size = 12 * MiB;
    await put('replaced', randomBytes(size));
    const it = readObjectRanged(s3, bucket, 'replaced', size, { partSize: MiB, concurrency: 1 })[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    await put('replaced', randomBytes(size)); // same size: only the ETag can tell
    const rest = (async () => {
      for (let r = await it.next(); !r.done; r = await it.next());
    })();
    await expect(rest).rejects.toMatchObject({ $metadata: { httpStatusCode: 412 } });
  });

  it('stops when aborted, with the GETs in flight', async () => {
    const size = 16 * MiB;
    await put('aborted', randomBytes(size));
    const ac = new AbortController();
    const stream = readObjectRanged(s3, bucket, 'aborted', size, { partSize: MiB, concurrency: 4, signal: ac.signal });
    let read = 0;
    const done = (async () => {
      for await (const c of stream) {
        read += c.length;
        if (read >= 2 * MiB) ac.abort();
      }
    })();
    await expect(done).rejects.toThrow(/abort/i);
    expect(read).toBeLessThan(size);
  });

  it('a backup object the bucket holds at another size than its manifest says is an integrity failure, naming both', async () => {
    const data = randomBytes(2 * MiB);
    await put('snap.db', data);
    const obj = {
      key: 'snap.db',
      plainSize: data.length + 10,
      plainSha256: sha256(data),
      storedSize: data.length + 10,
      storedSha256: sha256(data),
      compression: 'none' as const,
      encryption: null,
    };
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const err = await readStoredObject(s3, bucket, obj, () => undefined, sink).catch((e: Error) => e);
    expect(err).toBeInstanceOf(BackupIntegrityError);
    expect((err as Error).message).toContain(`the bucket holds ${data.length} bytes, the manifest says ${data.length + 10}`);
  });
});
