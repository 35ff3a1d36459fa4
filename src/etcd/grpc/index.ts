/** etcd's gRPC API for streaming snapshots and continuous backups; one import for the callers. */
export { createEtcdClient, type EtcdClient, type EtcdClientOptions } from './client';
export { status, type EtcdStatus } from './status';
export { countKeys, getKey, type KeyValueRead, type ReadOptions } from './range';
export { snapshotStream, type SnapshotDownload } from './snapshot';
export { SnapshotVerifier, type SnapshotSummary } from './snapshot-verifier';
export {
  watchKeyspace,
  WatchCanceledError,
  WatchCompactedError,
  type KeyspaceWatch,
  type WatchEvent,
  type WatchOptions,
  type WatchResult,
} from './watch';
