/**
 * One gRPC channel to one etcd member, with kubeadm's client certificates. A snapshot must come from one chosen member
 * (its own point in time), so there is no endpoint list and no balancing. The channel options are what the large
 * streams need: etcd's Go client accepts any message size (a watch response can carry a transaction far past gRPC's
 * 4 MiB default), and HTTP/2's 64 KiB default window stalls a snapshot on every round trip through a tunnel. The
 * window also bounds what a paused consumer leaves buffered (grpc-js stops reading a stream nobody reads).
 */
import * as grpc from '@grpc/grpc-js';
import { etcdServices, type KVStub, type LeaseStub, type MaintenanceStub, type WatchStub } from './proto';

export interface EtcdClientOptions {
  /** host:port of one member, e.g. 127.0.0.1:2379 or a local tunnel's port ([::1]:2379 for IPv6). */
  endpoint: string;
  /**
   * PEM contents (not paths) of etcd's CA and a client certificate it trusts, e.g. kubeadm's healthcheck-client; or
   * 'loopback-plaintext' for a throwaway etcd the engine started itself on loopback (a restore to a point replays into
   * one), refused for any other host.
   */
  tls: { ca: Buffer | string; cert: Buffer | string; key: Buffer | string } | 'loopback-plaintext';
  /** Deadline of each unary call (Status, Range); the streams have none and end through an AbortSignal. */
  callTimeoutMs?: number;
  /**
   * The name etcd's certificate is checked against when `endpoint` is not the member's own address (a tunnel's local
   * port reaching the node's etcd at another host): that host. The endpoint's host when omitted.
   */
  serverName?: string;
}

export interface EtcdClient {
  readonly endpoint: string;
  readonly kv: KVStub;
  readonly maintenance: MaintenanceStub;
  readonly watch: WatchStub;
  readonly lease: LeaseStub;
  /** The deadline for a unary call starting now. */
  deadline(): Date;
  /** Closes the channel; calls still running fail with CANCELLED/UNAVAILABLE. */
  close(): void;
}

/** etcd's Go client: math.MaxInt32 (client/v3/options.go, defaultMaxCallRecvMsgSize). */
export const MAX_RECEIVE_MESSAGE_BYTES = 2 ** 31 - 1;
/** Per-stream and connection window: 8 MiB in flight keeps a tunnel busy while holding a paused stream small. */
export const FLOW_CONTROL_WINDOW_BYTES = 8 * 1024 * 1024;
/**
 * A ping after 30 s of silence, dead after 10 s more. etcd's server refuses pings more often than every 5 s
 * (--grpc-keepalive-min-time) with GOAWAY "too_many_pings"; pings only while a call is open, which is when a dead
 * peer matters (a quiet watch).
 */
const KEEPALIVE = { timeMs: 30_000, timeoutMs: 10_000 };
const DEFAULT_CALL_TIMEOUT_MS = 10_000;

const ENDPOINT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

export function createEtcdClient(options: EtcdClientOptions): EtcdClient {
  const { endpoint, tls } = options;
  const m = typeof endpoint === 'string' ? ENDPOINT.exec(endpoint) : null;
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    throw new Error(`endpoint: ${JSON.stringify(endpoint)} is not host:port (e.g. 127.0.0.1:2379; no https:// in front)`);
  }
  if (tls === 'loopback-plaintext') {
    if (!/^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/.test(m[1]))
      throw new Error(`tls: plaintext only to a loopback etcd the engine started itself, not to ${endpoint}`);
  } else
    for (const field of ['ca', 'cert', 'key'] as const) {
      const v = tls?.[field];
      if (!(typeof v === 'string' || Buffer.isBuffer(v)) || !String(v).includes('-----BEGIN')) {
        throw new Error(`tls.${field}: expected the PEM contents of the file (read it first), not a path or nothing`);
      }
    }
  const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  if (!Number.isInteger(callTimeoutMs) || callTimeoutMs <= 0) throw new Error(`callTimeoutMs: ${callTimeoutMs} is not a positive integer`);

  const credentials =
    tls === 'loopback-plaintext'
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(Buffer.from(tls.ca), Buffer.from(tls.key), Buffer.from(tls.cert));
  const channelOptions: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES,
    'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
    'grpc.keepalive_time_ms': KEEPALIVE.timeMs,
    'grpc.keepalive_timeout_ms': KEEPALIVE.timeoutMs,
    'grpc.keepalive_permit_without_calls': 0,
    ...(options.serverName ? { 'grpc.ssl_target_name_override': options.serverName, 'grpc.default_authority': options.serverName } : {}),
  };
  const services = etcdServices();
  // One channel for the three services: a stub given `channelOverride` shares the first one's connection.
  const kv = new services.KV(endpoint, credentials, channelOptions);
  const channel = kv.getChannel();
  const shared: grpc.ClientOptions = { ...channelOptions, channelOverride: channel };
  const maintenance = new services.Maintenance(endpoint, credentials, shared);
  const watch = new services.Watch(endpoint, credentials, shared);
  const lease = new services.Lease(endpoint, credentials, shared);
  return {
    endpoint,
    kv,
    maintenance,
    watch,
    lease,
    deadline: () => new Date(Date.now() + callTimeoutMs),
    close: () => channel.close(),
  };
}

/** A unary call as a promise, with the client's deadline; the error names the call and the endpoint. */
export function unaryCall<Res>(
  client: EtcdClient,
  what: string,
  start: (metadata: grpc.Metadata, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, res?: Res) => void) => unknown,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    start(new grpc.Metadata(), { deadline: client.deadline() }, (err, res) => {
      if (err || res === undefined)
        reject(new Error(`etcd ${what} at ${client.endpoint}: ${err?.details || err?.message || 'no response'}`, { cause: err }));
      else resolve(res);
    });
  });
}

/** What an aborted call fails with: the signal's reason when it is an error (AbortSignal.abort() gives an AbortError). */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new DOMException(typeof reason === 'string' ? reason : 'aborted', 'AbortError');
}
