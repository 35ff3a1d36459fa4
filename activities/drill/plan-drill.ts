import type { Revision } from '../../src/etcd/revision';
import { ApplicationFailure } from '@temporalio/common';
import { loadEncryptionKey } from '../../src/backup/keyring';
import { etcdVersionForTools } from '../../src/backup/manifest';
import { manifestKeyOf } from '../../src/backup/object-keys';
import { trustRulesFor } from '../../src/backup/trusted-catalog';
import { findCluster } from '../../src/config/load';
import { etcdToolsFor } from '../../src/drill/etcd';
import { apiserverFor } from '../../src/drill/apiserver';
import { withDrillHost } from '../../src/drill/site';
import { s3ClientFor } from '../../src/storage/s3-client';
import type { ActivityDeps } from '../deps';
import { selectSnapshot, SnapshotSelectionError } from '../recovery/select-snapshot';

export interface PlanDrillInput {
  cluster: string;
  /** "latest" or a backup key. */
  snapshot: string;
}

export interface DrillPlan {
  cluster: string;
  manifestKey: string;
  created?: string;
  revision?: Revision;
  etcdVersion?: string;
  kubernetesVersion?: string;
  /** The drill can already tell this backup will not restore (a named backup refused): the drill fails with it. */
  problem?: string;
  /** For "latest": newer backups passed over, with why. */
  passedOver: { manifestKey: string; reason: string }[];
  /** How objects will be counted: through a throwaway kube-apiserver, or in etcd only (no binary for the version). */
  countThrough: 'api' | 'etcd';
  /** The drill node it runs on (drill.node), which one drill at a time may use; absent on the worker. */
  drillNode?: string;
  /** The cluster has continuous backups: the drill also rebuilds its newest chain (base + segments). */
  continuous?: boolean;
}

/**
 * Picks the backup a drill restores: "latest" is the newest backup a recovery could use now (as the recovery's own
 * choice: the bucket still holds its objects unchanged, its key is in the key ring, the drill host has etcd tools of
 * its version), passing over and naming the others; a named key is that backup — one that is already known not to
 * restore becomes the drill's finding rather than an error, so its report says so.
 */
export function planDrill(deps: ActivityDeps) {
  return async (input: PlanDrillInput): Promise<DrillPlan> => {
    const cluster = findCluster(deps.config, input.cluster);
    const drill = deps.config.drill;
    const s3 = await s3ClientFor(cluster.storage);
    const passOver: DrillPlan['passedOver'] = [];
    try {
      // The tools are looked for where the drill will run them (the worker, or the drill node over SSH).
      const plan = await withDrillHost(drill, async (host, paths): Promise<DrillPlan> => {
        for (;;) {
          let choice;
          try {
            choice = await selectSnapshot(s3, trustRulesFor(deps.config, cluster), input.snapshot, 'unless-imported', passOver);
          } catch (err) {
            if (!(err instanceof SnapshotSelectionError)) throw err;
            if (err.type !== 'MissingSnapshot' && input.snapshot !== 'latest') {
              const manifestKey = manifestKeyOf(input.snapshot);
              return {
                cluster: cluster.name,
                manifestKey,
                problem: err.message.replace(/^snapshot: /, ''),
                passedOver: [],
                countThrough: 'etcd',
              };
            }
            throw ApplicationFailure.nonRetryable(err.message, err.type);
          }
          const m = choice.manifest;
          const tools = await etcdToolsFor(host, paths, etcdVersionForTools(m));
          if (typeof tools === 'string') {
            if (input.snapshot !== 'latest')
              throw ApplicationFailure.nonRetryable(`backup ${choice.manifestKey}: ${tools}`, 'PreflightFailed');
            passOver.push({ manifestKey: choice.manifestKey, reason: tools });
            continue;
          }
          const base = {
            cluster: cluster.name,
            manifestKey: choice.manifestKey,
            created: m.created,
            revision: m.etcd.revision,
            etcdVersion: etcdVersionForTools(m),
            kubernetesVersion: m.kubernetesVersion,
            countThrough: (await apiserverFor(host, paths, m.kubernetesVersion)) ? ('api' as const) : ('etcd' as const),
          };
          const keyId = m.snapshot.encryption?.keyId;
          const keyProblem = keyId
            ? await loadEncryptionKey(deps.config, keyId).then(
                () => undefined,
                (err: Error) => err.message,
              )
            : undefined;
          if (keyProblem) {
            if (input.snapshot === 'latest') {
              passOver.push({ manifestKey: choice.manifestKey, reason: keyProblem });
              continue;
            }
            return { ...base, problem: `cannot decrypt it: ${keyProblem}`, passedOver: [] };
          }
          return { ...base, passedOver: choice.skipped };
        }
      });
      const withChain = cluster.backup.continuous ? { ...plan, continuous: true } : plan;
      return drill.node ? { ...withChain, drillNode: drill.node.name } : withChain;
    } finally {
      s3.destroy();
    }
  };
}
