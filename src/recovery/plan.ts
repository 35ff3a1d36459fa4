/** The plan a recovery follows: decided once, recorded in history, shown to the approver, then executed as-is. */
export interface RecoveryPlan {
  cluster: string;
  mode: 'in-place' | 'new-node';
  node: string;
  host: string;
  /** A target given as a host (not in config) carries its pinned key here; never credentials. */
  targetHostKey?: string;
  snapshot: {
    manifestKey: string;
    key: string;
    created: string;
    revision: number;
    totalKeys: number;
    plainSize: number;
    etcdVersion?: string;
    encryptionKeyId: string | null;
    /** Its manifest's tag matched under a key of the key ring, or it had none (an unencrypted cluster, or accepted by a person). Absent in plans from before manifests were signed. */
    manifest?: 'authentic' | 'unsigned';
  };
  /** Newer backups passed over, and why. */
  skipped: { manifestKey: string; reason: string }[];
  tool: { command: string; kind: 'etcdutl' | 'etcdctl'; version: string; bumpRevision: boolean };
  /** --bump-revision for this restore (revisionBumpFor), where the tool supports it; absent in older plans. */
  revisionBump?: number;
  /** The revisions that bump was computed from. */
  knownRevisions?: { live?: number; newestBackup?: number };
  member: { name: string; initialCluster: string; initialAdvertisePeerUrls: string; initialClusterToken: string };
  paths: {
    runDir: string;
    snapshotFile: string;
    manifestsDir: string;
    /** Where the running control plane's manifests are moved while it is stopped. */
    asideManifestsDir: string;
    dataDir: string;
    /** The new data dir is built here, then renamed into dataDir. */
    restoreDir: string;
    /** The replaced data dir, kept: never deleted. */
    asideDataDir: string;
    /** new-node: the backup's control-plane files are unpacked here. */
    controlPlaneFilesDir: string;
  };
  freeBytes: number;
  apiServer: string;
  /** Human-readable: what will happen, in order. */
  steps: string[];
}

export interface RecoveryStepStatus {
  step: string;
  status: 'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'compensated';
  startedAt?: string;
  endedAt?: string;
  detail?: string;
}

/**
 * How far a restore moves etcd's revision forward (etcdutl --bump-revision, 3.5+): beyond anything a watcher or an
 * informer can have seen, so none of them sees time go backwards. A restore's data is exactly what is at
 * snapshot revision + this.
 */
export const REVISION_BUMP = 1_000_000_000;

/**
 * The bump for a restore: past the highest revision known (etcd's live one when it answers, the newest backup's,
 * the snapshot's) by REVISION_BUMP. A fixed bump would move the revision backwards when an older backup is restored
 * after a newer one (the first restore already added REVISION_BUMP): watchers and informer caches would then see
 * revisions they already saw, with other data.
 */
export function revisionBumpFor(snapshotRevision: number, highestKnown: number): number {
  return Math.max(REVISION_BUMP, highestKnown - snapshotRevision + REVISION_BUMP);
}

/** The bump a plan restores with (plans from before it was computed used REVISION_BUMP). */
export function revisionBumpOf(plan: { revisionBump?: number }): number {
  return plan.revisionBump ?? REVISION_BUMP;
}
