import type { RecoveryPlan } from '../../src/recovery/plan';
import type { ActivityDeps } from '../deps';
import { manifestPod, readManifests } from './control-plane';
import { onTarget } from './on-target';
import { whileHeartbeating } from '../heartbeat';
import { waitForStaticPodsToStop, type ManifestPod } from './static-pods';

/** How long a rollback waits for the failed attempt's control plane to stop before it moves the data dirs anyway. */
const ROLLBACK_STOP_SECONDS = 60; // within the activity's 2 minutes

/**
 * Compensation after a failed recovery: the node goes back to how the plan found it. The restored data dir is
 * moved to <dataDir>.failed-<run> (kept for a post-mortem), the original comes back, the original manifests return.
 * Every move checks its source first, so this is safe to run again and at any point after the stop step.
 */
export function rollbackRecovery(deps: ActivityDeps) {
  return (input: { plan: RecoveryPlan }): Promise<{ actions: string[] }> =>
    // Heartbeating throughout: the cluster is down until this is done, so a lost worker must be noticed in seconds.
    whileHeartbeating(
      () => ({ step: 'rollback' }),
      () => rollback(deps, input),
    );
}

function rollback(deps: ActivityDeps, input: { plan: RecoveryPlan }): Promise<{ actions: string[] }> {
  return onTarget(deps, input.plan, async (s) => {
    const { paths, mode } = input.plan;
    const run = paths.restoreDir.split('.restored-').pop();
    const actions: string[] = [];
    const mv = async (from: string, to: string) => {
      await s.run(['mv', '-T', from, to]);
      actions.push(`${from} -> ${to}`);
    };
    // Stop whatever the failed attempt started, so the data dirs can move.
    const placed = (await s.run(['ls', '-A', paths.manifestsDir], { allowFailure: true })).stdout
      .split('\n')
      .filter((f) => f && !f.startsWith('.'));
    if (placed.length) {
      const failedManifests = `${paths.runDir}/manifests-failed`;
      await s.run(['mkdir', '-p', failedManifests]);
      const movedOut: string[] = [];
      for (const f of placed) {
        if (mode === 'in-place' && !(await s.exists(`${paths.asideManifestsDir}/${f}`))) continue; // not ours to move
        await mv(`${paths.manifestsDir}/${f}`, `${failedManifests}/${f}`);
        movedOut.push(f);
      }
      // The data dirs move next: the failed attempt's etcd must be gone first, like in the stop step.
      if (movedOut.length) {
        const manifests = [...(await readManifests(s, failedManifests, movedOut)).values()]
          .map(manifestPod)
          .filter((p): p is ManifestPod => !!p);
        await waitForStaticPodsToStop(s, {
          ports: [2379, 6443],
          manifests,
          timeoutSeconds: ROLLBACK_STOP_SECONDS,
          movedAt: Date.now(),
          onTimeout: () => new Error('still running'),
        }).catch(() =>
          actions.push(`the failed attempt's control plane was still running after ${ROLLBACK_STOP_SECONDS} s; data dirs moved anyway`),
        );
      }
    }
    if (await s.exists(`${paths.dataDir}/.lifeboat-restored-${run}`)) await mv(paths.dataDir, `${paths.dataDir}.failed-${run}`);
    if ((await s.exists(paths.asideDataDir)) && !(await s.exists(paths.dataDir))) await mv(paths.asideDataDir, paths.dataDir);
    if (mode === 'in-place') {
      for (const f of (await s.run(['ls', '-A', paths.asideManifestsDir], { allowFailure: true })).stdout.split('\n').filter(Boolean)) {
        if (!(await s.exists(`${paths.manifestsDir}/${f}`))) await mv(`${paths.asideManifestsDir}/${f}`, `${paths.manifestsDir}/${f}`);
      }
    }
    return { actions };
  });
}
