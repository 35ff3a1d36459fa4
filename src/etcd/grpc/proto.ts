/**
 * etcd's gRPC services from the trimmed protos next to this file, loaded at run time with proto-loader (no generated
 * code to keep in step). `longs: String` is the point: every int64 (revisions, sizes) arrives as its decimal digits and
 * is sent from digits, so a revision past 2^53 is never a rounded JS number. The interfaces below describe what
 * proto-loader hands back with these options (camelCase names, defaults filled, bytes as Buffers, enums as names).
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** int64/uint64 as decimal digits (proto-loader's `longs: String`). */
export type Int64 = string;

export interface ResponseHeader {
  clusterId: Int64;
  memberId: Int64;
  revision: Int64;
  raftTerm: Int64;
}

export interface KeyValue {
  key: Buffer;
  createRevision: Int64;
  modRevision: Int64;
  version: Int64;
  value: Buffer;
  lease: Int64;
}

export interface Event {
  type: 'PUT' | 'DELETE';
  kv: KeyValue | null;
  prevKv: KeyValue | null;
}

export interface RangeRequest {
  key: Buffer;
  rangeEnd?: Buffer;
  limit?: Int64;
  revision?: Int64;
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
}

export interface RangeResponse {
  header: ResponseHeader | null;
  kvs: KeyValue[];
  more: boolean;
  count: Int64;
}

export interface StatusResponse {
  header: ResponseHeader | null;
  version: string;
  dbSize: Int64;
  leader: Int64;
  raftIndex: Int64;
  raftTerm: Int64;
  errors: string[];
  dbSizeInUse: Int64;
}

export interface SnapshotResponse {
  header: ResponseHeader | null;
  remainingBytes: Int64;
  blob: Buffer;
  version: string;
}

export interface WatchCreateRequest {
  key: Buffer;
  rangeEnd?: Buffer;
  startRevision?: Int64;
  progressNotify?: boolean;
  prevKv?: boolean;
  watchId?: Int64;
  fragment?: boolean;
}

export type WatchRequest =
  { createRequest: WatchCreateRequest } | { cancelRequest: { watchId: Int64 } } | { progressRequest: Record<string, never> };

export interface WatchResponse {
  header: ResponseHeader | null;
  watchId: Int64;
  created: boolean;
  canceled: boolean;
  compactRevision: Int64;
  cancelReason: string;
  fragment: boolean;
  events: Event[];
}

type Unary<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: Res) => void,
) => grpc.ClientUnaryCall;

export interface RequestOp {
  requestPut?: { key: Buffer; value: Buffer; lease?: Int64 };
  requestDeleteRange?: { key: Buffer; rangeEnd?: Buffer };
}

export interface TxnResponse {
  header: ResponseHeader | null;
  succeeded: boolean;
}

export interface LeaseGrantResponse {
  header: ResponseHeader | null;
  ID: Int64;
  TTL: Int64;
  error: string;
}

export interface KVStub extends grpc.Client {
  Range: Unary<RangeRequest, RangeResponse>;
  Txn: Unary<{ success: RequestOp[] }, TxnResponse>;
  Compact: Unary<{ revision: Int64; physical?: boolean }, { header: ResponseHeader | null }>;
}
export interface LeaseStub extends grpc.Client {
  LeaseGrant: Unary<{ TTL: Int64; ID?: Int64 }, LeaseGrantResponse>;
}
export interface MaintenanceStub extends grpc.Client {
  Status: Unary<Record<string, never>, StatusResponse>;
  Snapshot(request: Record<string, never>, options?: grpc.CallOptions): grpc.ClientReadableStream<SnapshotResponse>;
}
export interface WatchStub extends grpc.Client {
  Watch(options?: grpc.CallOptions): grpc.ClientDuplexStream<WatchRequest, WatchResponse>;
}

type StubConstructor<T> = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => T;
export interface EtcdServices {
  KV: StubConstructor<KVStub>;
  Maintenance: StubConstructor<MaintenanceStub>;
  Watch: StubConstructor<WatchStub>;
  Lease: StubConstructor<LeaseStub>;
}

/**
 * The protos sit next to this file under jest; compiled code (dist/src/etcd/grpc, dist-testbed/src/etcd/grpc) reads
 * them from the checkout's src/, which the image copies too (Dockerfile).
 */
export const protoDir = [join(__dirname, 'proto'), join(__dirname, '../../../../src/etcd/grpc/proto')].find((d) =>
  existsSync(join(d, 'rpc.proto')),
);

let definition: protoLoader.PackageDefinition | undefined;
let services: EtcdServices | undefined;

/** The loaded definition; its method definitions carry the (de)serializers grpc-js uses. */
export function etcdDefinition(): protoLoader.PackageDefinition {
  if (!protoDir) {
    throw new Error(
      `etcd's protos (rpc.proto, kv.proto) are missing: looked in ${join(__dirname, 'proto')} and the checkout's src/etcd/grpc/proto`,
    );
  }
  definition ??= protoLoader.loadSync('rpc.proto', {
    includeDirs: [protoDir],
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
  });
  return definition;
}

export function etcdServices(): EtcdServices {
  services ??= (grpc.loadPackageDefinition(etcdDefinition()) as unknown as { etcdserverpb: EtcdServices }).etcdserverpb;
  return services;
}
