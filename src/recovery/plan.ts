import { addRevisions, revisionDistance, toRevision, type Revision, type RevisionLike } from '../etcd/revision';
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
    revision: Revision;
    /** Absent for a snapshot streamed from etcd (no `snapshot status` of a file). */
    totalKeys?: number;
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
  revisionBump?: Revision;
  /** The revisions that bump was computed from. */
  knownRevisions?: { live?: Revision; newestBackup?: Revision };
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
 * The furthest one restore may move etcd's revision: a million restores' worth of REVISION_BUMP. Beyond it the
 * "highest known" revision is not believable (etcd would need decades at a million writes a second to get there), and
 * a bump that size would spend etcd's int64 range for nothing.
 */
export const MAX_REVISION_BUMP = 1_000_000n * BigInt(REVISION_BUMP);

/**
 * The bump for a restore: past the highest revision known (etcd's live one when it answers, the newest believed
 * backup's, the snapshot's) by REVISION_BUMP. A fixed bump would move the revision backwards when an older backup is
 * restored after a newer one (the first restore already added REVISION_BUMP): watchers and informer caches would
 * then see revisions they already saw, with other data. Throws past MAX_REVISION_BUMP.
 */
export function revisionBumpFor(snapshotRevision: RevisionLike, highestKnown: RevisionLike): Revision {
  const gap = revisionDistance(highestKnown, snapshotRevision);
  const bump = (gap > 0n ? gap : 0n) + BigInt(REVISION_BUMP);
  if (bump > MAX_REVISION_BUMP)
    throw new Error(
      `the highest known revision ${toRevision(highestKnown)} is ${gap} past the snapshot's ${toRevision(snapshotRevision)}: more than any real cluster reaches (the bump is capped at ${MAX_REVISION_BUMP})`,
    );
  return bump.toString();
}

/** The bump a plan restores with (plans from before it was computed used REVISION_BUMP; older ones hold numbers). */
export function revisionBumpOf(plan: { revisionBump?: RevisionLike }): Revision {
  return toRevision(plan.revisionBump ?? REVISION_BUMP, 'plan.revisionBump');
}

/** etcd's revision right after a plan's restore: the snapshot's, moved forward by --bump-revision where it was used. */
export function restoredRevisionOf(plan: {
  snapshot: { revision: RevisionLike };
  tool?: { bumpRevision?: boolean };
  revisionBump?: RevisionLike;
}): Revision {
  const revision = toRevision(plan.snapshot.revision, 'plan.snapshot.revision');
  return plan.tool?.bumpRevision ? addRevisions(revision, revisionBumpOf(plan)) : revision;
}
