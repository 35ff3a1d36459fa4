import type { Revision } from '../src/etcd/revision';
import { ApplicationFailure, deprecatePatch, log, metricMeter, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BackupManifest } from '../src/backup/manifest';
import { backupObjectKeys, type BackupObjectKeys } from '../src/backup/object-keys';
import type { BackupPlan } from '../activities/backup/plan-backup';
import type { SnapshotInspection } from '../activities/backup/inspect-snapshot';
import type { ControlPlaneArchive } from '../activities/backup/upload';
import type { StreamedObject } from '../src/backup/stream-to-s3';
import type { SnapshotSource } from '../src/backup/snapshot-host';
import { backupInputProblems } from './backup-input';
import { runKeyOf } from './run-key';
import { stepFailure } from './step-failure';
import { ACTIVITY_OPTIONS } from './activity-options';
import { labelled } from './run-labels';

export interface BackupClusterInput {
  cluster: string;
  /** Show what retention would delete without deleting. */
  retentionDryRun?: boolean;
  /** Why this backup was taken (schedule, operator, before a change); kept in the result. */
  reason?: string;
  /**
   * A person's go-ahead (never a schedule's) to store a snapshot whose etcd revision is below the newest backup's:
   * etcd was reset on purpose. Without it such a backup is refused (RevisionRegression).
   */
  allowRevisionRegression?: boolean;
}

export interface BackupStepTiming {
  step: string;
  ms: number;
}

export interface BackupClusterResult {
  cluster: string;
  node: string;
  created: string;
  revision: Revision;
  /** `snapshot status`'s key count; absent when the snapshot was streamed from etcd (direct mode: no file to read). */
  totalKeys?: number;
  snapshotKey: string;
  controlPlaneFilesKey: string;
  manifestKey: string;
  location: string;
  plainBytes: number;
  storedBytes: number;
  compression: string;
  /** Where the snapshot was compressed (node or worker), and why not on the node when it could not be. */
  compressedOn?: string;
  compressionNote?: string;
  encryptionKeyId: string | null;
  resourceCounts: Record<string, number>;
  confirmedBy: string[];
  retention: { dryRun: boolean; deleted: { key: string; created: string }[]; kept: number; orphansRemoved: string[] };
  steps: BackupStepTiming[];
  reason?: string;
  /** The revision floor this backup is below, overridden with allowRevisionRegression. */
  revisionRegressionAllowed?: { floor: Revision; from: string };
  /** SSH mode: why this snapshot was saved to a file first and then uploaded, instead of uploaded while etcdctl saved it. */
  savedFirst?: string;
}

/** What the snapshot steps leave for the rest of the backup: both objects uploaded, and what the manifest says of the snapshot. */
interface Taken {
  node: string;
  takenAt: string;
  keys: BackupObjectKeys;
  snapshotObject: StreamedObject;
  archive: ControlPlaneArchive;
  inspection: Pick<SnapshotInspection, 'etcd' | 'kubernetesVersion' | 'resourceCounts'>;
  /** The run folder holding the snapshot file, removed once the backup is complete; none when streamed. */
  nodeRunFiles?: NodeRunFiles;
  revisionRegressionAllowed?: { floor: Revision; from: string };
}

interface NodeRunFiles {
  runDir: string;
  source?: SnapshotSource;
}

function keysOf(plan: BackupPlan, takenAt: string, revision: Revision): BackupObjectKeys {
  return backupObjectKeys({
    prefix: plan.prefix,
    cluster: plan.cluster,
    takenAt,
    revision,
    compression: plan.compression,
    encrypted: plan.encryptionKeyId !== null,
  });
}

const quick = proxyActivities<Activities>(ACTIVITY_OPTIONS.quick);
const snapshotting = proxyActivities<Activities>(ACTIVITY_OPTIONS.snapshot);
const transfers = proxyActivities<Activities>(ACTIVITY_OPTIONS.transfer);

/**
 * One backup of one cluster: snapshot on the node, verify it with etcd's reader, stream it (and the PKI, manifests
 * and kubeconfigs) through compression and encryption to S3 — in direct mode, etcd's own snapshot stream uploaded as
 * it arrives, in one step — confirm what the bucket holds, write the manifest last, clean the node, then prune by the
 * retention policy. Every step is its own retryable, idempotent activity. Which way a run goes is in its recorded plan
 * (`streamFromEtcd`, `streamWhileSaving`), so histories from before streaming replay the way they ran.
 */
export async function backupCluster(input: BackupClusterInput): Promise<BackupClusterResult> {
  return labelled(
    {
      kind: 'backup',
      input,
      summary: () =>
        backupInputProblems(input).length ? undefined : `backup of ${input.cluster}${input.reason ? ` (${input.reason})` : ''}`,
      outcome: () => 'succeeded',
    },
    () => backup(input),
  );
}

async function backup(input: BackupClusterInput): Promise<BackupClusterResult> {
  const problems = backupInputProblems(input);
  if (problems.length) throw ApplicationFailure.nonRetryable(`invalid backup input: ${problems.join('; ')}`, 'InvalidInput');
  const steps: BackupStepTiming[] = [];
  let step = 'plan';
  const timed = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
    step = name;
    const started = Date.now();
    try {
      const result = await body();
      steps.push({ step: name, ms: Date.now() - started });
      return result;
    } catch (err) {
      step = name; // steps run side by side: the failure is reported with the step that failed
      throw err;
    }
  };
  const info = workflowInfo();
  const uploaded: string[] = [];
  let savedFirst: string | undefined;
  const regression = input.allowRevisionRegression ? { allowRevisionRegression: true as const } : {};
  /**
   * Direct mode: one step reads etcd's snapshot stream and uploads it as it arrives, and reads the revision, versions
   * and counts from etcd meanwhile; the archive follows (its key holds the revision, known once the stream started).
   */
  const streamed = async (plan: BackupPlan): Promise<Taken> => {
    const s = await timed('snapshot', () =>
      transfers.streamSnapshot({
        cluster: plan.cluster,
        node: plan.node,
        prefix: plan.prefix,
        compression: plan.compression,
        encryptionKeyId: plan.encryptionKeyId,
        ...regression,
      }),
    );
    const keys = keysOf(plan, s.takenAt, s.etcd.revision);
    if (keys.snapshot !== s.object.key)
      throw ApplicationFailure.nonRetryable(`the snapshot was stored as ${s.object.key}, not ${keys.snapshot}`);
    uploaded.push(keys.snapshot, keys.controlPlaneFiles);
    const common = { cluster: plan.cluster, node: plan.node, compression: plan.compression, encryptionKeyId: plan.encryptionKeyId };
    const archive = await timed('control-plane files', () => transfers.uploadControlPlaneFiles({ ...common, key: keys.controlPlaneFiles }));
    return {
      node: plan.node,
      takenAt: s.takenAt,
      keys,
      snapshotObject: s.object,
      archive,
      inspection: { etcd: s.etcd, kubernetesVersion: s.kubernetesVersion, resourceCounts: s.resourceCounts },
      revisionRegressionAllowed: s.revisionRegressionAllowed,
    };
  };
  /** SSH mode: `etcdctl snapshot save` on the node, then the file streams up while it is inspected. */
  const takenThenUploaded = async (plan: BackupPlan, runKey: string): Promise<Taken> => {
    const snap = await timed('snapshot', () => snapshotting.takeSnapshot({ cluster: plan.cluster, runKey, ...regression }));
    if (snap.revisionRegressionAllowed)
      log.warn('storing a snapshot below the revision floor, as allowed', { cluster: plan.cluster, ...snap.revisionRegressionAllowed });
    // The snapshot step already read the file with etcd's reader: its revision names the objects.
    const keys = keysOf(plan, snap.takenAt, snap.status.revision);
    const common = { cluster: plan.cluster, node: snap.node, compression: plan.compression, encryptionKeyId: plan.encryptionKeyId };
    uploaded.push(keys.snapshot, keys.controlPlaneFiles);
    // The streams at once (the archive is small and rides alongside), and what the manifest records about the
    // snapshot (versions, counts per resource) is read meanwhile: none of it changes the bytes being uploaded.
    const [snapshotObject, archive, inspection] = await Promise.all([
      timed('upload', () =>
        transfers.uploadSnapshot({
          ...common,
          key: keys.snapshot,
          path: snap.path,
          source: snap.source,
          sizeBytes: snap.sizeBytes,
          compressOn: plan.compressOn,
        }),
      ),
      timed('control-plane files', () => transfers.uploadControlPlaneFiles({ ...common, key: keys.controlPlaneFiles })),
      timed('verify', () =>
        quick.inspectSnapshot({ cluster: plan.cluster, node: snap.node, path: snap.path, source: snap.source, status: snap.status }),
      ),
    ]);
    return {
      node: snap.node,
      takenAt: snap.takenAt,
      keys,
      snapshotObject,
      archive,
      inspection,
      nodeRunFiles: { runDir: snap.runDir, source: snap.source },
      revisionRegressionAllowed: snap.revisionRegressionAllowed,
    };
  };
  /**
   * SSH mode: the node's `snapshot save` read as it grows and uploaded meanwhile, in one step; then the archive and
   * etcd's reader on the finished file side by side. When the step could not stream (etcd written to at every
   * start, an earlier attempt's file, a failure to explain), the file path, which reuses the file.
   */
  const streamedWhileSaving = async (plan: BackupPlan, runKey: string): Promise<Taken> => {
    const s = await timed('snapshot', () =>
      transfers.streamWhileSaving({
        cluster: plan.cluster,
        runKey,
        prefix: plan.prefix,
        compression: plan.compression,
        compressOn: plan.compressOn,
        encryptionKeyId: plan.encryptionKeyId,
        ...regression,
      }),
    );
    if (!s.streamed) {
      log.info('the snapshot is taken first, then uploaded', { cluster: plan.cluster, why: s.why });
      savedFirst = s.why;
      return takenThenUploaded(plan, runKey);
    }
    if (s.revisionRegressionAllowed)
      log.warn('storing a snapshot below the revision floor, as allowed', { cluster: plan.cluster, ...s.revisionRegressionAllowed });
    const keys = keysOf(plan, s.takenAt, s.revision);
    uploaded.push(s.object.key, keys.controlPlaneFiles);
    if (keys.snapshot !== s.object.key)
      throw ApplicationFailure.nonRetryable(`the snapshot was stored as ${s.object.key}, not ${keys.snapshot}`);
    const common = { cluster: plan.cluster, node: s.node, compression: plan.compression, encryptionKeyId: plan.encryptionKeyId };
    const [archive, inspection] = await Promise.all([
      timed('control-plane files', () => transfers.uploadControlPlaneFiles({ ...common, key: keys.controlPlaneFiles })),
      timed('verify', () => quick.inspectSnapshot({ cluster: plan.cluster, node: s.node, path: s.path, source: 'node' })),
    ]);
    if (inspection.etcd.revision !== s.revision) {
      throw ApplicationFailure.nonRetryable(
        `etcd's reader says the snapshot holds revision ${inspection.etcd.revision}, but it was pinned at ${s.revision} and named so; nothing is kept`,
        'SnapshotRevisionMismatch',
      );
    }
    return {
      node: s.node,
      takenAt: s.takenAt,
      keys,
      snapshotObject: s.object,
      archive,
      inspection,
      nodeRunFiles: { runDir: s.runDir, source: 'node' },
      revisionRegressionAllowed: s.revisionRegressionAllowed,
    };
  };
  try {
    const plan = await timed('plan', () => quick.planBackup({ cluster: input.cluster }));
    if (plan.compressionNote) log.warn('compression falls back to the worker', { cluster: plan.cluster, note: plan.compressionNote });
    const runKey = `${info.workflowId}-${runKeyOf(info.runId)}`.replace(/[^A-Za-z0-9._-]/g, '_').slice(-120);
    // Every recorded run verifies alongside the uploads; the marker stays in their histories (no history of the
    // older order, verify first, was ever recorded, so that branch is gone).
    deprecatePatch('verify-alongside-upload');
    const taken = plan.streamFromEtcd
      ? await streamed(plan)
      : plan.streamWhileSaving
        ? await streamedWhileSaving(plan, runKey)
        : await takenThenUploaded(plan, runKey);
    const { keys, snapshotObject, archive, inspection } = taken;
    if (taken.revisionRegressionAllowed && plan.streamFromEtcd)
      log.warn('storing a snapshot below the revision floor, as allowed', { cluster: plan.cluster, ...taken.revisionRegressionAllowed });
    const confirmed = await timed('confirm', () =>
      quick.confirmObjects({
        cluster: plan.cluster,
        objects: [snapshotObject, archive].map((o) => ({ key: o.key, storedSize: o.storedSize, s3Checksum: o.s3Checksum })),
      }),
    );
    const manifest: BackupManifest = {
      format: 'lifeboat-backup/v1',
      cluster: plan.cluster,
      created: taken.takenAt,
      node: taken.node,
      etcd: inspection.etcd,
      // The archive step reads it from the kube-apiserver manifest; older histories have it from the snapshot steps.
      kubernetesVersion: inspection.kubernetesVersion ?? archive.kubernetesVersion,
      resourceCounts: inspection.resourceCounts,
      // Keep the bucket's checksum only where the bucket confirmed it: a restore re-checks it with one HEAD request.
      snapshot: { ...snapshotObject, s3Checksum: confirmed[0].checkedBy !== 'size' ? snapshotObject.s3Checksum : undefined },
      controlPlaneFiles: { ...archive, s3Checksum: confirmed[1].checkedBy !== 'size' ? archive.s3Checksum : undefined },
      verified: true,
      workflow: { workflowId: info.workflowId, runId: info.runId },
      engineVersion: plan.engineVersion,
    };
    await timed('manifest', () => quick.writeManifest({ cluster: plan.cluster, key: keys.manifest, manifest }));
    uploaded.length = 0; // complete: nothing to discard from here on
    const cleanNode = async (files: NodeRunFiles | undefined) => {
      if (files) await timed('clean node', () => quick.removeNodeRunFiles({ cluster: plan.cluster, node: taken.node, ...files }));
    };
    const applyRetention = () =>
      timed('retention', () =>
        quick.applyRetention({ cluster: plan.cluster, now: new Date(Date.now()).toISOString(), dryRun: input.retentionDryRun ?? false }),
      );
    // Independent once the manifest is written: the node's copy (none when streamed) and the bucket's old backups.
    const [, retention] = await Promise.all([cleanNode(taken.nodeRunFiles), applyRetention()]);
    metricMeter.createCounter('lifeboat_backups_succeeded', 'backups', 'Backups that completed').add(1, { cluster: plan.cluster });
    log.info('backup complete', { cluster: plan.cluster, revision: inspection.etcd.revision, key: keys.snapshot });
    return {
      cluster: plan.cluster,
      node: taken.node,
      created: taken.takenAt,
      revision: inspection.etcd.revision,
      totalKeys: inspection.etcd.totalKeys,
      snapshotKey: keys.snapshot,
      controlPlaneFilesKey: keys.controlPlaneFiles,
      manifestKey: keys.manifest,
      location: plan.location,
      plainBytes: snapshotObject.plainSize,
      storedBytes: snapshotObject.storedSize,
      compression: plan.compression,
      compressedOn: plan.compression === 'none' ? undefined : (plan.compressOn ?? 'worker'),
      compressionNote: plan.compressionNote,
      encryptionKeyId: plan.encryptionKeyId,
      resourceCounts: inspection.resourceCounts,
      confirmedBy: confirmed.map((c) => `${c.key}: ${c.checkedBy}`),
      retention: {
        dryRun: retention.dryRun,
        deleted: retention.deleted,
        kept: retention.kept.length,
        orphansRemoved: retention.orphansRemoved,
      },
      steps,
      reason: input.reason,
      ...(taken.revisionRegressionAllowed ? { revisionRegressionAllowed: taken.revisionRegressionAllowed } : {}),
      ...(savedFirst ? { savedFirst } : {}),
    };
  } catch (err) {
    metricMeter.createCounter('lifeboat_backups_failed', 'backups', 'Backups that failed').add(1, { cluster: input.cluster, step });
    log.error('backup failed', { cluster: input.cluster, step, error: (err as Error).message });
    if (uploaded.length > 0) {
      // Objects without a manifest are no backup: remove them rather than leave half a backup in the bucket.
      await quick.discardIncompleteBackup({ cluster: input.cluster, keys: uploaded }).catch(() => undefined);
    }
    throw stepFailure(input.cluster, step, err, 'BackupFailed');
  }
}
