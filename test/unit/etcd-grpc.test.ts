import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createEtcdClient } from '../../src/etcd/grpc/client';
import { grpcEndpointOf } from '../../src/backup/direct-etcd';
import {
  etcdDefinition,
  type SnapshotResponse,
  type WatchCreateRequest,
  type WatchRequest,
  type WatchResponse,
} from '../../src/etcd/grpc/proto';
import { prefixEnd } from '../../src/etcd/grpc/range';
import { SnapshotVerifier } from '../../src/etcd/grpc/snapshot-verifier';

/** The messages etcd's maintenanceServer.Snapshot sends for `db`: 32 KiB blobs, then the SHA-256 with remaining 0. */
function etcdMessages(db: Buffer, version = '3.6.0'): SnapshotResponse[] {
  const out: SnapshotResponse[] = [];
  for (let sent = 0; sent < db.length;) {
    const blob = db.subarray(sent, sent + 32 * 1024);
    sent += blob.length;
    out.push({ header: null, remainingBytes: String(db.length - sent), blob, version });
  }
  out.push({ header: null, remainingBytes: '0', blob: createHash('sha256').update(db).digest(), version });
  return out;
}

/** Runs messages through a verifier; what came out, whether 'end' was emitted, and the error. */
async function verify(messages: SnapshotResponse[]) {
  const verifier = new SnapshotVerifier('test');
  const chunks: Buffer[] = [];
  let ended = false;
  verifier.on('end', () => (ended = true));
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  const error = await pipeline(Readable.from(messages, { objectMode: true }), verifier, sink).then(
    () => undefined,
    (err: Error) => err,
  );
  return { bytes: Buffer.concat(chunks), ended, error, summary: verifier.summary };
}

describe('SnapshotVerifier', () => {
  const db = randomBytes(5 * 32 * 1024 + 4096); // not a multiple of the chunk size, like a real db

  it("passes etcd's messages through as etcdctl's file: the database, then its SHA-256", async () => {
    const r = await verify(etcdMessages(db));
    expect(r.error).toBeUndefined();
    expect(r.ended).toBe(true);
    expect(r.bytes.equals(Buffer.concat([db, createHash('sha256').update(db).digest()]))).toBe(true);
    expect(r.summary).toEqual({
      dbBytes: db.length,
      bytes: db.length + 32,
      sha256: createHash('sha256').update(db).digest('hex'),
      fileSha256: createHash('sha256').update(r.bytes).digest('hex'),
      hashMatched: true,
      version: '3.6.0',
    });
  });

  it('takes a database that is an exact multiple of the chunk size (the last data message says remaining 0 too)', async () => {
    const exact = db.subarray(0, 4 * 32 * 1024);
    const r = await verify(etcdMessages(exact, ''));
    expect(r.error).toBeUndefined();
    expect(r.summary?.bytes).toBe(exact.length + 32);
    expect(r.summary?.version).toBe('');
  });

  it('errors, never ends, and holds back the trailer when one byte of the database is corrupted', async () => {
    const messages = etcdMessages(db);
    const corrupted = Buffer.from(messages[2].blob);
    corrupted[100] ^= 1;
    messages[2] = { ...messages[2], blob: corrupted };
    const r = await verify(messages);
    expect(r.error?.message).toMatch(/SHA-256 mismatch/);
    expect(r.ended).toBe(false);
    expect(r.bytes.length).toBeLessThanOrEqual(db.length);
    expect(r.summary).toBeUndefined();
  });

  it.each([
    ['the stream breaks midway', (m: SnapshotResponse[]) => m.slice(0, 3), /ended after 98304 of 167936 bytes/],
    ['the trailer is missing', (m: SnapshotResponse[]) => m.slice(0, -1), /without the SHA-256/],
    [
      'a message is lost (remaining_bytes does not add up)',
      (m: SnapshotResponse[]) => [m[0], ...m.slice(2)],
      /remaining_bytes 69632 after 65536 of 167936 bytes \(expected 102400\)/,
    ],
    [
      'more bytes than announced arrive',
      (m: SnapshotResponse[]) => [m[0], m[1], { ...m[2], blob: Buffer.concat([m[2].blob, m[3].blob, m[4].blob, m[5].blob, m[5].blob]) }],
      /more than the 167936 announced/,
    ],
    ['anything follows the trailer', (m: SnapshotResponse[]) => [...m, m[0]], /after the SHA-256/],
    ['nothing arrives', () => [], /before any message/],
  ])('errors and never ends when %s', async (_what, change, message) => {
    const r = await verify(change(etcdMessages(db)));
    expect(r.error?.message).toMatch(message);
    expect(r.ended).toBe(false);
  });
});

describe("etcd's protos with longs as strings", () => {
  // The (de)serializers grpc-js calls for the Watch method.
  type Codec = {
    requestSerialize(v: unknown): Buffer;
    requestDeserialize(b: Buffer): WatchRequest;
    responseDeserialize(b: Buffer): WatchResponse;
  };
  const watch = (etcdDefinition()['etcdserverpb.Watch'] as unknown as Record<string, Codec>).Watch;

  it('sends and reads int64 revisions past 2^53 exactly', () => {
    const past = '9007199254740993'; // 2^53 + 1: a JS number would read 9007199254740992
    const bytes = watch.requestSerialize({
      createRequest: { key: Buffer.from([0]), rangeEnd: Buffer.from([0]), startRevision: past, fragment: true },
    });
    expect((watch.requestDeserialize(bytes) as { createRequest: WatchCreateRequest }).createRequest.startRevision).toBe(past);
    // A WatchResponse: header{revision: 2^63-1}, compact_revision = 2^53+1 (varints written by hand, as etcd would).
    const varint = (n: bigint) => {
      const out: number[] = [];
      for (; n > 0x7fn; n >>= 7n) out.push(Number(n & 0x7fn) | 0x80);
      out.push(Number(n));
      return Buffer.from(out);
    };
    const header = Buffer.concat([Buffer.from([0x18]), varint(2n ** 63n - 1n)]);
    const res = Buffer.concat([Buffer.from([0x0a, header.length]), header, Buffer.from([0x28]), varint(2n ** 53n + 1n)]);
    const decoded = watch.responseDeserialize(res);
    expect(decoded.header?.revision).toBe('9223372036854775807');
    expect(decoded.compactRevision).toBe(past);
    expect(decoded.events).toEqual([]);
  });
});

describe('createEtcdClient input', () => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  it.each([
    [
      'a URL',
      { endpoint: 'https://127.0.0.1:2379', tls: { ca: pem, cert: pem, key: pem } },
      /endpoint: "https:\/\/127.0.0.1:2379" is not host:port/,
    ],
    ['no port', { endpoint: '127.0.0.1', tls: { ca: pem, cert: pem, key: pem } }, /endpoint: .* is not host:port/],
    [
      'a path for the CA',
      { endpoint: '127.0.0.1:2379', tls: { ca: '/etc/kubernetes/pki/etcd/ca.crt', cert: pem, key: pem } },
      /tls.ca: expected the PEM contents/,
    ],
    ['a zero timeout', { endpoint: '127.0.0.1:2379', tls: { ca: pem, cert: pem, key: pem }, callTimeoutMs: 0 }, /callTimeoutMs: 0/],
  ])('refuses %s early, naming the field', (_what, options, message) => {
    expect(() => createEtcdClient(options)).toThrow(message);
  });
});

describe('prefixEnd', () => {
  it("is etcd's range end for a prefix", () => {
    expect(prefixEnd(Buffer.from('/registry/'))).toEqual(Buffer.from('/registry0'));
    expect(prefixEnd(Buffer.from([0x61, 0xff]))).toEqual(Buffer.from([0x62]));
    expect(prefixEnd(Buffer.from([0xff]))).toEqual(Buffer.from([0]));
  });
});

describe("direct mode's endpoint for the gRPC client", () => {
  it('takes host:port from the configured URL (brackets kept for IPv6, 2379 when the URL has no port)', () => {
    expect(grpcEndpointOf('https://10.0.0.10:2379')).toBe('10.0.0.10:2379');
    expect(grpcEndpointOf('https://[fd00::1]:2379')).toBe('[fd00::1]:2379');
    expect(grpcEndpointOf('https://etcd.internal')).toBe('etcd.internal:2379');
  });
});
