import { ApplicationFailure } from '@temporalio/common';
import type { RecoveryPlan } from '../../src/recovery/plan';
import type { ActivityDeps } from '../deps';
import { classified } from '../errors';
import { activityContext, whileHeartbeating } from '../heartbeat';
import { etcdctl } from '../etcd-commands';
import { apiClientFor } from './api-client';
import { listening, onTarget, type TargetSession } from './on-target';

const STATIC_POD = /\.(ya?ml|json)$/;
const CONTROL_PLANE_PORTS = [2379, 6443];

async function staticPodFiles(s: TargetSession, dir: string): Promise<string[]> {
  const r = await s.run(['ls', '-A', dir], true);
  return r.code === 0 ? r.stdout.split('\n').filter((f) => f && !f.startsWith('.') && STATIC_POD.test(f)) : [];
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>, detail: () => Promise<string> = async () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const ctx = activityContext();
  while (!(await check())) {
    ctx?.heartbeat({ waitingFor: what });
    if (ctx?.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
    if (Date.now() > deadline) throw ApplicationFailure.retryable(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${await detail()}`, 'Timeout');
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Stops the static pods the way the kubelet understands: their manifests leave the manifests folder (moved, with the
 * run id in the destination). Then waits until etcd and kube-apiserver really stopped listening.
 */
export function stopControlPlane(deps: ActivityDeps) {
  return (input: { plan: RecoveryPlan; timeoutSeconds: number }): Promise<{ moved: string[]; to: string }> =>
    classified(() =>
      onTarget(deps, input.plan, async (s) => {
        const { manifestsDir, asideManifestsDir } = input.plan.paths;
        await s.run(['mkdir', '-p', '-m', '0700', asideManifestsDir]);
        const moved: string[] = [];
        for (const f of await staticPodFiles(s, manifestsDir)) {
          await s.run(['mv', '-n', `${manifestsDir}/${f}`, `${asideManifestsDir}/${f}`]);
          moved.push(f);
        }
        await waitUntil(
          'etcd and kube-apiserver to stop (ports 2379, 6443)',
          input.timeoutSeconds * 1000,
          async () => (await listening(s, CONTROL_PLANE_PORTS)).length === 0,
          async () => `; still listening: ${(await listening(s, CONTROL_PLANE_PORTS)).join(', ')}`,
        );
        return { moved: [...new Set([...moved, ...(await staticPodFiles(s, asideManifestsDir))])], to: asideManifestsDir };
      }),
    );
}

/**
 * `etcdutl snapshot restore` (or `etcdctl` on 3.4) into a new run-specific folder, with the member identity from the
 * node's etcd manifest and, where supported, a revision bump so watchers and informers never see time go backwards.
 * Then the swap, by rename: the current data dir is moved aside (kept), the restored one takes its name.
 * Each part checks what is already done, so a retry after a crash continues instead of repeating.
 */
export function restoreEtcdData(deps: ActivityDeps) {
  return (input: { plan: RecoveryPlan }): Promise<{ dataDir: string; previousDataDir: string | null; restoredWith: string }> =>
    classified(() =>
      onTarget(deps, input.plan, async (s) => {
        const { paths, member, tool } = input.plan;
        const swapped = (await s.exists(`${paths.dataDir}/.lifeboat-restored-${paths.restoreDir.split('.restored-').pop()}`));
        if (!swapped && !(await s.exists(`${paths.restoreDir}/member`))) {
          const tmp = `${paths.restoreDir}.tmp`;
          // Our own half-written output from a crashed attempt: nothing anyone needs, and restore refuses an existing dir.
          await s.run(['rm', '-rf', '--', tmp]);
          const argv = [
            tool.command,
            'snapshot',
            'restore',
            paths.snapshotFile,
            `--data-dir=${tmp}`,
            `--name=${member.name}`,
            `--initial-cluster=${member.initialCluster}`,
            `--initial-cluster-token=${member.initialClusterToken}`,
            `--initial-advertise-peer-urls=${member.initialAdvertisePeerUrls}`,
            ...(tool.bumpRevision ? ['--bump-revision=1000000000', '--mark-compacted'] : []),
          ];
          const r = await whileHeartbeating(() => ({ restoring: tmp }), () => s.run(tool.kind === 'etcdctl' ? ['env', 'ETCDCTL_API=3', ...argv] : argv, true));
          if (r.code !== 0) {
            throw ApplicationFailure.nonRetryable(`cluster "${s.cluster.name}", step restore: ${tool.kind} snapshot restore failed on node "${s.node.name}": ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`, 'RestoreFailed');
          }
          await s.run(['chmod', '0700', tmp]);
          await s.run(['mv', '-T', tmp, paths.restoreDir]);
        }
        let previous: string | null = null;
        if (!swapped) {
          if (await s.exists(paths.dataDir)) {
            if (await s.exists(paths.asideDataDir)) throw ApplicationFailure.nonRetryable(`${paths.asideDataDir} already exists on node "${s.node.name}"; refusing to overwrite it`, 'RestoreFailed');
            await s.run(['mv', '-T', paths.dataDir, paths.asideDataDir]);
          }
          await s.run(['touch', `${paths.restoreDir}/.lifeboat-restored-${paths.restoreDir.split('.restored-').pop()}`]);
          await s.run(['mv', '-T', paths.restoreDir, paths.dataDir]);
        }
        if (await s.exists(paths.asideDataDir)) previous = paths.asideDataDir;
        return { dataDir: paths.dataDir, previousDataDir: previous, restoredWith: `${tool.kind} ${tool.version}` };
      }),
    );
}

/** Puts the manifests back (new node: the backup's own) and waits for etcd health and kube-apiserver /readyz. */
export function startControlPlane(deps: ActivityDeps) {
  return (input: { plan: RecoveryPlan; timeoutSeconds: number }): Promise<{ started: string[] }> =>
    classified(() =>
      onTarget(deps, input.plan, async (s) => {
        const { paths, mode } = input.plan;
        const source = mode === 'new-node' ? `${paths.controlPlaneFilesDir}/${paths.manifestsDir.split('/').pop()}` : paths.asideManifestsDir;
        await s.run(['mkdir', '-p', paths.manifestsDir]);
        const started: string[] = [];
        for (const f of await staticPodFiles(s, source)) {
          if (!(await s.exists(`${paths.manifestsDir}/${f}`))) await s.run(mode === 'new-node' ? ['cp', '-p', `${source}/${f}`, `${paths.manifestsDir}/${f}`] : ['mv', '-n', `${source}/${f}`, `${paths.manifestsDir}/${f}`]);
          started.push(f);
        }
        await waitUntil('etcd to report healthy', input.timeoutSeconds * 1000, async () => (await s.run(etcdctl(s.cluster, 'endpoint', 'health'), true)).code === 0);
        const api = await apiClientFor(s, input.plan);
        await waitUntil(`kube-apiserver /readyz at ${api.server}`, input.timeoutSeconds * 1000, () => api.ready());
        return { started };
      }),
    );
}
