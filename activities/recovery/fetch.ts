import { ApplicationFailure } from '@temporalio/common';
import { loadEncryptionKey } from '../../src/backup/keyring';
import { BackupIntegrityError, readStoredObject } from '../../src/backup/read-object';
import type { StoredObject } from '../../src/backup/manifest';
import type { RecoveryPlan } from '../../src/recovery/plan';
import { s3ClientFor } from '../../src/storage/s3-client';
import type { ActivityDeps } from '../deps';
import { cancellationSignal, throttledHeartbeat, transferring } from '../heartbeat';
import { SHA256_SHELL } from '../../src/etcd/commands';
import { restoreKubeletIdentity, type KubeletRestore } from './kubelet';
import { onTarget, planManifest, type TargetSession } from './on-target';

/** Streams a stored object, decrypted and decompressed, into a command's stdin on the node; returns its stdout. */
async function streamObjectTo(deps: ActivityDeps, s: TargetSession, obj: StoredObject, argv: string[], into: string): Promise<string> {
  const key = obj.encryption ? await loadEncryptionKey(deps.config, obj.encryption.keyId) : undefined;
  const s3 = await s3ClientFor(s.cluster.storage);
  const heartbeat = throttledHeartbeat();
  const remote = await s.stream(argv, 'to-node');
  try {
    const [, stdout] = await transferring(() =>
      Promise.all([
        readStoredObject(
          s3,
          s.cluster.storage.bucket,
          obj,
          () => key,
          remote.stdin,
          (bytes) => heartbeat({ key: obj.key, bytes }),
          cancellationSignal(),
        ),
        remote.done,
      ]),
    );
    return stdout;
  } catch (err) {
    remote.close();
    if (err instanceof BackupIntegrityError)
      throw ApplicationFailure.nonRetryable(`${err.message}; the node was not changed`, 'CorruptSnapshot');
    // A full disk does not empty itself: retrying would only fail again for a quarter of an hour.
    if (/No space left on device/i.test((err as Error).message ?? '')) {
      throw ApplicationFailure.nonRetryable(
        `node "${s.node.name}" ran out of space writing into ${into} (${Math.ceil(obj.plainSize / 1048576)} MiB needed there); free space and start again; the partial file was removed`,
        'NoSpace',
      );
    }
    throw err;
  } finally {
    s3.destroy();
  }
}

/**
 * Puts the snapshot on the node as <runDir>/snapshot.db: written to a .part file, checked there with SHA-256
 * against the manifest, then renamed. A file already in place with the right hash is not fetched again.
 */
export function fetchSnapshot(deps: ActivityDeps) {
  return (input: { plan: RecoveryPlan }): Promise<{ path: string; reused: boolean }> =>
    onTarget(deps, input.plan, async (s) => {
      const { paths } = input.plan;
      const manifest = await planManifest(deps, s, input.plan);
      const hashOf = async (p: string) => (await s.run(['sh', '-c', SHA256_SHELL, 'sh', p], { allowFailure: true })).stdout.split(/\s+/)[0];
      await s.run(['mkdir', '-p', '-m', '0700', paths.runDir]);
      if ((await s.exists(paths.snapshotFile)) && (await hashOf(paths.snapshotFile)) === manifest.snapshot.plainSha256)
        return { path: paths.snapshotFile, reused: true };
      const part = `${paths.snapshotFile}.part`;
      // The node writes the file and hashes what it wrote in one pass (tee | sha256).
      const written = await streamObjectTo(
        deps,
        s,
        manifest.snapshot,
        ['bash', '-c', `set -o pipefail; tee -- "$1" | { set --; ${SHA256_SHELL}; }`, 'bash', part],
        paths.runDir,
      ).catch(async (err: unknown) => {
        // No partial file is left behind (a cancelled or failed fetch would otherwise keep up to a snapshot's size).
        await s.run(['rm', '-f', '--', part], { allowFailure: true }).catch(() => undefined);
        throw err;
      });
      const onNode = written.split(/\s+/)[0];
      if (onNode !== manifest.snapshot.plainSha256) {
        throw ApplicationFailure.retryable(
          `the file on node "${s.node.name}" hashes to ${onNode}, the backup to ${manifest.snapshot.plainSha256}`,
          'TransferCorrupted',
        );
      }
      await s.run(['mv', '-f', part, paths.snapshotFile]);
      return { path: paths.snapshotFile, reused: false };
    });
}

/**
 * new-node: unpacks the backup's PKI, manifests, kubeconfigs and kubelet files into <runDir>/control-plane, then puts
 * the PKI and kubeconfigs in place — the old node's identity, so existing tokens and kubelets keep trusting the
 * cluster — and the kubelet's own identity, restarting the kubelet (./kubelet.ts).
 * Anything already at those paths is moved to <runDir>/replaced, never deleted. Manifests wait for the start step.
 */
export function restoreControlPlaneFiles(deps: ActivityDeps) {
  return (input: { plan: RecoveryPlan }): Promise<{ placed: string[]; movedAside: string[]; kubelet?: KubeletRestore }> =>
    onTarget(deps, input.plan, async (s) => {
      const { paths, snapshot } = input.plan;
      const manifest = await planManifest(deps, s, input.plan);
      const files = manifest.controlPlaneFiles;
      if (!files)
        throw ApplicationFailure.nonRetryable(
          `backup ${snapshot.manifestKey} has no control-plane files; a new node cannot be built from it`,
          'IncompleteBackup',
        );
      const done = `${paths.controlPlaneFilesDir}/.complete`;
      if (!(await s.exists(done))) {
        const staging = `${paths.controlPlaneFilesDir}.part`;
        await s.run(['mkdir', '-p', '-m', '0700', staging]);
        await streamObjectTo(deps, s, files, ['tar', '-xf', '-', '-C', staging], staging);
        await s.run(['touch', `${staging}/.complete`]);
        await s.run(['mv', '-T', staging, paths.controlPlaneFilesDir]);
      }
      const k8s = s.cluster.paths.kubernetesDir;
      const pkiName = s.cluster.paths.pkiDir.split('/').pop()!;
      const entries = (await s.run(['ls', '-A', paths.controlPlaneFilesDir])).stdout.split('\n').filter((e) => e && e !== '.complete');
      const placed: string[] = [];
      const movedAside: string[] = [];
      await s.run(['mkdir', '-p', k8s, `${paths.runDir}/replaced`]);
      for (const entry of entries) {
        if (entry === s.cluster.paths.manifestsDir.split('/').pop()) continue; // placed by the start step
        if (entry === s.cluster.paths.kubeletDir.split('/').pop()) continue; // file by file, below
        const dest = entry === pkiName ? s.cluster.paths.pkiDir : `${k8s}/${entry}`;
        const marker = `${paths.runDir}/replaced/.placed-${entry}`;
        if (await s.exists(marker)) continue;
        if (await s.exists(dest)) {
          await s.run(['mv', '-T', dest, `${paths.runDir}/replaced/${entry}`]);
          movedAside.push(`${dest} -> ${paths.runDir}/replaced/${entry}`);
        }
        await s.run(['cp', '-a', `${paths.controlPlaneFilesDir}/${entry}`, dest]);
        await s.run(['touch', marker]);
        placed.push(dest);
      }
      const kubelet = await restoreKubeletIdentity(s, input.plan);
      return { placed: [...placed, ...kubelet.placed], movedAside: [...movedAside, ...kubelet.movedAside], kubelet };
    });
}
