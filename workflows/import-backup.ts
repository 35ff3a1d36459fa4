import type { Revision } from '../src/etcd/revision';
import { withClaim } from './claim';
import { ApplicationFailure, CancellationScope, log, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BackupManifest } from '../src/backup/manifest';
import { ACTIVITY_OPTIONS } from './activity-options';
import { importInputProblems, type ImportBackupInput } from './import-input';
import { runKeyOf } from './run-key';
import { labelled } from './run-labels';
import { stepFailure } from './step-failure';

export type { ImportBackupInput };

export interface ImportBackupResult {
  cluster: string;
  from: string;
  created: string;
  createdFrom: 'name' | 'object time';
  revision: Revision;
  totalKeys: number;
  hash: number;
  storageVersion?: string;
  snapshotKey: string;
  manifestKey: string;
  location: string;
  plainBytes: number;
  storedBytes: number;
  encryptionKeyId: string | null;
  resourceCounts: Record<string, number>;
  checkedWith: string;
  reason?: string;
}

const quick = proxyActivities<Activities>(ACTIVITY_OPTIONS.quick);
const importing = proxyActivities<Activities>(ACTIVITY_OPTIONS.drill);

/**
 * Brings a snapshot taken by something else (the plain kubeadm runbook's `etcdctl snapshot save`, copied to the
 * bucket) in as a regular backup: read and restored by etcd's own tools on the worker, stored compressed and
 * encrypted under the cluster's backups with a signed manifest marked `source.kind: imported`. A workflow, like a
 * backup, for the same reasons: each step is a retried activity, the run is in the UI's history, and a worker that
 * dies half-way leaves a run that finishes (or cleans up) rather than a CLI process that was killed.
 * It applies no retention: an old imported snapshot would otherwise be pruned by the very run that brought it in.
 */
export async function importBackup(input: ImportBackupInput): Promise<ImportBackupResult> {
  return labelled(
    {
      kind: 'backup',
      input,
      summary: () => (importInputProblems(input).length ? undefined : `import of ${input.from ?? input.key} into ${input.cluster}`),
      outcome: () => 'succeeded',
    },
    () => importIt(input),
  );
}

async function importIt(input: ImportBackupInput): Promise<ImportBackupResult> {
  const problems = importInputProblems(input);
  if (problems.length) throw ApplicationFailure.nonRetryable(`invalid import input: ${problems.join('; ')}`, 'InvalidInput');
  const from = input.from ?? input.key;
  // An import makes a new backup that "latest" may then be: never while a recovery of the cluster chooses or restores.
  if (patched('one-import-per-cluster'))
    return withClaim(`cluster-${input.cluster}`, `cluster ${input.cluster}`, () => importClaimed(input, from));
  return importClaimed(input, from);
}

async function importClaimed(input: ImportBackupInput, from: string): Promise<ImportBackupResult> {
  const info = workflowInfo();
  let step = 'plan';
  let stored: string | undefined;
  try {
    const [plan, source] = await Promise.all([
      quick.planBackup({ cluster: input.cluster }),
      quick.planImport({ cluster: input.cluster, key: input.key }),
    ]);
    step = 'verify and store';
    const imported = await importing.importSnapshot({
      cluster: plan.cluster,
      source,
      runKey: `import-${input.cluster}-${runKeyOf(info.runId)}`,
      compression: plan.compression,
      encryptionKeyId: plan.encryptionKeyId,
    });
    stored = imported.keys.snapshot;
    step = 'confirm';
    const [confirmed] = await quick.confirmObjects({
      cluster: plan.cluster,
      objects: [{ key: imported.snapshot.key, storedSize: imported.snapshot.storedSize, s3Checksum: imported.snapshot.s3Checksum }],
    });
    const importedAt = new Date(Date.now()).toISOString();
    const manifest: BackupManifest = {
      format: 'lifeboat-backup/v1',
      cluster: plan.cluster,
      created: source.created,
      etcd: imported.etcd,
      resourceCounts: imported.resourceCounts,
      snapshot: { ...imported.snapshot, s3Checksum: confirmed.checkedBy !== 'size' ? imported.snapshot.s3Checksum : undefined },
      // Not known for a snapshot made elsewhere: a recovery in place keeps the node's own PKI and manifests.
      controlPlaneFiles: null,
      verified: true,
      workflow: { workflowId: info.workflowId, runId: info.runId },
      engineVersion: plan.engineVersion,
      source: { kind: 'imported', from, importedAt, createdFrom: source.createdFrom },
    };
    step = 'manifest';
    await quick.writeManifest({ cluster: plan.cluster, key: imported.keys.manifest, manifest });
    stored = undefined;
    log.info('import complete', { cluster: plan.cluster, from, revision: imported.etcd.revision, key: imported.keys.snapshot });
    return {
      cluster: plan.cluster,
      from,
      created: source.created,
      createdFrom: source.createdFrom,
      revision: imported.etcd.revision,
      totalKeys: imported.etcd.totalKeys,
      hash: imported.etcd.hash,
      storageVersion: imported.etcd.storageVersion,
      snapshotKey: imported.keys.snapshot,
      manifestKey: imported.keys.manifest,
      location: plan.location,
      plainBytes: imported.snapshot.plainSize,
      storedBytes: imported.snapshot.storedSize,
      encryptionKeyId: plan.encryptionKeyId,
      resourceCounts: imported.resourceCounts,
      checkedWith: imported.checkedWith,
      reason: input.reason,
    };
  } catch (err) {
    if (stored) {
      const key = stored;
      // A snapshot object without a manifest is no backup.
      await CancellationScope.nonCancellable(() => quick.discardIncompleteBackup({ cluster: input.cluster, keys: [key] })).catch(
        () => undefined,
      );
    }
    throw stepFailure(input.cluster, step, err, 'ImportFailed');
  } finally {
    if (input.staged) {
      await CancellationScope.nonCancellable(() => quick.removeStagedImport({ cluster: input.cluster, key: input.key })).catch(
        () => undefined,
      );
    }
  }
}
