import { ApplicationFailure } from '@temporalio/common';
import type { BackupManifest } from '../../src/backup/manifest';
import { readTrustedBackup, trustRulesFor, UntrustedBackup } from '../../src/backup/trusted-catalog';
import { s3ClientFor } from '../../src/storage/s3-client';
import { findCluster } from '../../src/config/load';
import type { ClusterConfig } from '../../src/config/schema';
import type { RecoveryPlan } from '../../src/recovery/plan';
import { withSession, type NodeSession } from '../../src/ssh/session';
import type { ActivityDeps } from '../deps';
import { cancellationSignal, whilePreparing } from '../heartbeat';
import { targetNode } from './plan-recovery';

export interface TargetSession extends NodeSession {
  cluster: ClusterConfig;
}

/** A session on the plan's target node (host key pinned) for one recovery step, closed when the activity is cancelled. */
export async function onTarget<T>(deps: ActivityDeps, plan: RecoveryPlan, body: (s: TargetSession) => Promise<T>): Promise<T> {
  const cluster = findCluster(deps.config, plan.cluster);
  const node = targetNode(cluster, plan.targetHostKey ? plan.host : plan.node, plan.targetHostKey);
  // A login and round trips of seconds each on a slow link: heartbeating, except while bytes flow (./fetch.ts).
  return whilePreparing(
    () => ({ step: 'on target', node: node.name }),
    () => withSession(node, (s) => body({ ...s, cluster }), { signal: cancellationSignal() }),
  );
}

/** Listening TCP ports on the node among `ports`. */
export async function listening(s: TargetSession, ports: number[]): Promise<number[]> {
  const out = await s.run(['sh', '-c', "ss -Htln 2>/dev/null | awk '{print $4}'"], { allowFailure: true });
  const open = new Set(out.stdout.split('\n').map((a) => Number(a.split(':').pop())));
  return ports.filter((p) => open.has(p));
}

/**
 * The plan's backup manifest, read again for a step that needs more of it than the plan carries, the way the plan
 * read it (src/backup/trusted-catalog.ts): authentic and stored where its content says (unsigned only where the plan
 * accepted that), and still the backup the plan chose. The bucket may have changed since the plan.
 */
export async function planManifest(deps: ActivityDeps, s: TargetSession, plan: RecoveryPlan): Promise<BackupManifest> {
  const s3 = await s3ClientFor(s.cluster.storage);
  try {
    const rules = trustRulesFor(deps.config, s.cluster, plan.snapshot.manifest !== 'authentic');
    const { manifest } = await readTrustedBackup(s3, rules, plan.snapshot.manifestKey);
    if (manifest.snapshot.key !== plan.snapshot.key || manifest.etcd.revision !== plan.snapshot.revision)
      throw new UntrustedBackup(plan.snapshot.manifestKey, 'it no longer describes the snapshot the plan chose', 'untrusted');
    return manifest;
  } catch (err) {
    if (err instanceof UntrustedBackup)
      throw ApplicationFailure.nonRetryable(
        `${err.message}; the bucket changed since the plan: plan the recovery again`,
        'UnauthenticatedManifest',
      );
    throw err;
  } finally {
    s3.destroy();
  }
}
