import type { Compression } from './object-keys';

/** What one stored object is: enough to verify it end to end and to decode it. */
export interface StoredObject {
  key: string;
  plainSize: number;
  plainSha256: string;
  storedSize: number;
  storedSha256: string;
  /** The bucket's own checksum of the object (`crc32:…`, or SHA-256 in older manifests; "-N" for multipart): a HEAD request re-checks it cheaply. */
  s3Checksum?: string;
  compression: Compression;
  /** Key id only: the key itself lives with the operator, never in the bucket or in history. */
  encryption: { algorithm: 'aes-256-gcm-stream'; keyId: string } | null;
}

export interface EtcdSnapshotInfo {
  /** etcd's own hash of the snapshot's key/value data (`snapshot status`). */
  hash: number;
  revision: number;
  totalKeys: number;
  totalSize: number;
  /** Version of the etcd server the snapshot came from. */
  serverVersion?: string;
  /** Storage version recorded in the snapshot (3.6+). */
  storageVersion?: string;
}

/**
 * The JSON manifest written beside each backup, last, after its objects are confirmed in the bucket: a manifest
 * therefore always means a complete backup. Restores and listings read only manifests.
 */
export interface BackupManifest {
  format: 'lifeboat-backup/v1';
  cluster: string;
  /** When etcd took the snapshot (UTC, ISO-8601). */
  created: string;
  node: string;
  etcd: EtcdSnapshotInfo;
  kubernetesVersion?: string;
  /** Keys per resource under /registry/<resource>/ at the snapshot's revision. */
  resourceCounts: Record<string, number>;
  snapshot: StoredObject;
  controlPlaneFiles: (StoredObject & { files: string[] }) | null;
  /** The snapshot was checked by `snapshot status` and its checksum matched end to end. */
  verified: boolean;
  workflow: { workflowId: string; runId: string };
  engineVersion: string;
}

export const MANIFEST_FORMAT = 'lifeboat-backup/v1' as const;
