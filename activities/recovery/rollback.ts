import type { RecoveryPlan } from '../../src/recovery/plan';
import type { ActivityDeps } from '../deps';
import { classified } from '../errors';
import { onTarget } from './on-target';

/**
 * Compensation after a failed recovery: the node goes back to how the plan found it. The restored data dir is
 * moved to <dataDir>.failed-<run> (kept for a post-mortem), the original comes back, the original manifests return.
 * Every move checks its source first, so this is safe to run again and at any point after the stop step.
 */
export function rollbackRecovery(deps: ActivityDeps) {
  return (input: { plan: RecoveryPlan }): Promise<{ actions: string[] }> =>
    classified(() =>
      onTarget(deps, input.plan, async (s) => {
        const { paths, mode } = input.plan;
        const run = paths.restoreDir.split('.restored-').pop();
        const actions: string[] = [];
        const mv = async (from: string, to: string) => {
          await s.run(['mv', '-T', from, to]);
          actions.push(`${from} -> ${to}`);
        };
        // Stop whatever the failed attempt started, so the data dirs can move.
        const placed = (await s.run(['ls', '-A', paths.manifestsDir], true)).stdout.split('\n').filter((f) => f && !f.startsWith('.'));
        if (placed.length) {
          const failedManifests = `${paths.runDir}/manifests-failed`;
          await s.run(['mkdir', '-p', failedManifests]);
          for (const f of placed) {
            if (mode === 'in-place' && !(await s.exists(`${paths.asideManifestsDir}/${f}`))) continue; // not ours to move
            await mv(`${paths.manifestsDir}/${f}`, `${failedManifests}/${f}`);
          }
        }
        if (await s.exists(`${paths.dataDir}/.lifeboat-restored-${run}`)) await mv(paths.dataDir, `${paths.dataDir}.failed-${run}`);
        if ((await s.exists(paths.asideDataDir)) && !(await s.exists(paths.dataDir))) await mv(paths.asideDataDir, paths.dataDir);
        if (mode === 'in-place') {
          for (const f of (await s.run(['ls', '-A', paths.asideManifestsDir], true)).stdout.split('\n').filter(Boolean)) {
            if (!(await s.exists(`${paths.manifestsDir}/${f}`))) await mv(`${paths.asideManifestsDir}/${f}`, `${paths.manifestsDir}/${f}`);
          }
        }
        return { actions };
      }),
    );
}
