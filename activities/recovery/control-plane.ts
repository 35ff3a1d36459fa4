import { ApplicationFailure } from '@temporalio/common';
import { revisionBumpOf, type RecoveryPlan } from '../../src/recovery/plan';
import type { ActivityDeps } from '../deps';
import { activityContext, whileHeartbeating } from '../heartbeat';
import { etcdctl } from '../../src/etcd/commands';
import { command } from '../../src/ssh/quote';
import { apiClientFor } from './api-client';
import { onTarget, type TargetSession } from './on-target';
import { annotateStaticPodManifest } from '../../src/recovery/static-pod-manifest';
import { parse as parseYaml } from 'yaml';
import { waitForStaticPodsToStop, type ManifestPod } from './static-pods';

const CONTROL_PLANE_PORTS = [2379, 6443];

async function waitUntil(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  detail: () => Promise<string> = async () => '',
  everyMs = 500,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const ctx = activityContext();
  while (!(await check())) {
    ctx?.heartbeat({ waitingFor: what });
    if (ctx?.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
    if (Date.now() > deadline)
      throw ApplicationFailure.retryable(
        `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${await detail()}`,
        'Timeout',
      );
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Moves the static-pod manifests of folder $1 into $2, never over a file already there, and prints every manifest
 * name that is in $2 afterwards: the whole step in one round trip, and safe to repeat.
 */
const MOVE_MANIFESTS = `set -e; from="$1"; to="$2"; mkdir -p -m 0700 "$to"
for p in "$from"/*; do
  f="\${p##*/}"; case "$f" in .*) continue ;; *.yaml|*.yml|*.json) ;; *) continue ;; esac
  [ -e "$p" ] || continue
  [ -e "$to/$f" ] || mv -n "$p" "$to/$f"
done
for p in "$to"/*; do f="\${p##*/}"; case "$f" in .*) ;; *.yaml|*.yml|*.json) [ -e "$p" ] && echo "$f" ;; esac; done; true`;

/**
 * $1 data dir, $2 where it goes aside, $3 the restored dir, $4 the marker that says the swap is done. Exit 3 when
 * the aside name is taken (nothing is ever moved over it).
 */
const SWAP_DATA_DIR = `set -e; data="$1"; aside="$2"; restored="$3"; marker="$4"
[ -e "$data/$marker" ] && exit 0
if [ -e "$data" ]; then [ -e "$aside" ] && exit 3; mv -T "$data" "$aside"; fi
touch "$restored/$marker"; mv -T "$restored" "$data"`;

/**
 * Polls a shell condition on the node itself (every 200 ms, like an operator's while loop) in one long command,
 * heartbeating meanwhile; closing the session on cancellation ends the loop.
 */
async function waitOnNode(
  s: TargetSession,
  what: string,
  timeoutSeconds: number,
  condition: string,
  detail: () => Promise<string> = async () => '',
): Promise<void> {
  const tries = Math.max(1, Math.ceil(timeoutSeconds * 5));
  const loop = `i=0; while [ $i -lt ${tries} ]; do if ${condition}; then exit 0; fi; sleep 0.2; i=$((i+1)); done; exit 1`;
  const r = await whileHeartbeating(
    () => ({ waitingFor: what }),
    () => s.run(['sh', '-c', loop], { allowFailure: true }),
  );
  if (r.code !== 0)
    throw ApplicationFailure.retryable(`timed out after ${timeoutSeconds} s waiting for ${what}${await detail()}`, 'Timeout');
}

/** Prints "<name> <base64 of the file>" for each manifest $2... of folder $1: their contents in one round trip. */
const READ_MANIFESTS = 'dir="$1"; shift; for f in "$@"; do printf "%s " "$f"; base64 -w0 "$dir/$f"; echo; done';

/** The contents of manifests `names` of folder `dir` on the node. */
export async function readManifests(s: TargetSession, dir: string, names: string[]): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  if (!names.length) return files;
  const out = await s.run(['sh', '-c', READ_MANIFESTS, 'sh', dir, ...names]);
  for (const line of out.stdout.split('\n')) {
    const at = line.indexOf(' ');
    if (at > 0) files.set(line.slice(0, at), Buffer.from(line.slice(at + 1), 'base64').toString('utf8'));
  }
  return files;
}

/** The static pod a manifest describes (namespace and name); undefined when it does not parse. */
export function manifestPod(text: string): ManifestPod | undefined {
  try {
    const pod = parseYaml(text) as { metadata?: { name?: string; namespace?: string } } | null;
    return pod?.metadata?.name ? { namespace: pod.metadata.namespace ?? 'default', name: pod.metadata.name } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Stops the static pods the way the kubelet understands: their manifests leave the manifests folder (moved, with the
 * run id in the destination). Then waits until etcd and kube-apiserver really stopped listening and, where the
 * container runtime is reachable with crictl, until their containers are gone, shortening kube-apiserver's long
 * graceful stop through the runtime (see static-pods.ts for why that is safe and the manifests are not edited).
 */
export function stopControlPlane(deps: ActivityDeps) {
  return (input: {
    plan: RecoveryPlan;
    timeoutSeconds: number;
  }): Promise<{ moved: string[]; to: string; forced?: string[]; criUnavailable?: string }> =>
    onTarget(deps, input.plan, async (s) => {
      const { manifestsDir, asideManifestsDir } = input.plan.paths;
      // One round trip: move every static-pod manifest aside (never over one already there), print the names.
      const moved = (await s.run(['sh', '-c', MOVE_MANIFESTS, 'sh', manifestsDir, asideManifestsDir])).stdout.split('\n').filter(Boolean);
      const movedAt = Date.now();
      const manifests = [...(await readManifests(s, asideManifestsDir, moved)).values()]
        .map(manifestPod)
        .filter((p): p is ManifestPod => !!p);
      const { forced, criUnavailable } = await waitForStaticPodsToStop(s, {
        ports: CONTROL_PLANE_PORTS,
        manifests,
        timeoutSeconds: input.timeoutSeconds,
        movedAt,
        onTimeout: (state) =>
          ApplicationFailure.retryable(
            `timed out after ${input.timeoutSeconds} s waiting for etcd and kube-apiserver to stop (ports ${CONTROL_PLANE_PORTS.join(', ')}); still ${[...state.listening.map((p) => `listening: ${p}`), ...state.running.map((c) => `running: ${c.pod}/${c.name}`)].join(', ')}`,
            'Timeout',
          ),
      });
      return { moved, to: asideManifestsDir, forced, ...(criUnavailable ? { criUnavailable } : {}) };
    });
}

/**
 * `etcdutl snapshot restore` (or `etcdctl` on 3.4) into a new run-specific folder, with the member identity from the
 * node's etcd manifest and, where supported, a revision bump so watchers and informers never see time go backwards.
 * Then the swap, by rename: the current data dir is moved aside (kept), the restored one takes its name.
 * Each part checks what is already done, so a retry after a crash continues instead of repeating.
 */
export function restoreEtcdData(deps: ActivityDeps) {
  return (input: { plan: RecoveryPlan }): Promise<{ dataDir: string; previousDataDir: string | null; restoredWith: string }> =>
    onTarget(deps, input.plan, async (s) => {
      const { paths, member, tool } = input.plan;
      const marker = `.lifeboat-restored-${paths.restoreDir.split('.restored-').pop()}`;
      const state = (
        await s.run([
          'sh',
          '-c',
          '[ -e "$1/$2" ] && echo swapped; [ -e "$3/member" ] && echo restored; true',
          'sh',
          paths.dataDir,
          marker,
          paths.restoreDir,
        ])
      ).stdout;
      const swapped = state.includes('swapped');
      if (!swapped && !state.includes('restored')) {
        const tmp = `${paths.restoreDir}.tmp`;
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
          ...(tool.bumpRevision ? [`--bump-revision=${revisionBumpOf(input.plan)}`, '--mark-compacted'] : []),
        ];
        // Our own half-written output from a crashed attempt is nothing anyone needs (and restore refuses an
        // existing dir), nor is that of a restore that failed (the rollback then leaves the node as it was, without a
        // dir the size of the data beside it); the finished restore becomes visible under its final name only by rename.
        const script =
          'set -e; tmp="$1"; dest="$2"; shift 2; rm -rf -- "$tmp"; "$@" || { rc=$?; rm -rf -- "$tmp"; exit $rc; }; chmod 0700 "$tmp"; mv -T "$tmp" "$dest"';
        const r = await whileHeartbeating(
          () => ({ restoring: tmp }),
          () =>
            s.run(
              [
                'bash',
                '-c',
                script,
                'bash',
                tmp,
                paths.restoreDir,
                ...(tool.kind === 'etcdctl' ? ['env', 'ETCDCTL_API=3', ...argv] : argv),
              ],
              { allowFailure: true },
            ),
        );
        if (r.code !== 0) {
          throw ApplicationFailure.nonRetryable(
            `${tool.kind} snapshot restore failed on node "${s.node.name}": ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`,
            'RestoreFailed',
          );
        }
      }
      if (!swapped) {
        // The swap, by rename: the live dir is moved aside (kept, never overwritten), the restored one takes its name.
        const swap = await s.run(['sh', '-c', SWAP_DATA_DIR, 'sh', paths.dataDir, paths.asideDataDir, paths.restoreDir, marker], {
          allowFailure: true,
        });
        if (swap.code === 3)
          throw ApplicationFailure.nonRetryable(
            `${paths.asideDataDir} already exists on node "${s.node.name}"; refusing to overwrite it`,
            'RestoreFailed',
          );
        if (swap.code !== 0) throw new Error(`swapping the data dir on node "${s.node.name}" failed: ${swap.stderr.trim()}`);
      }
      const previous = (await s.exists(paths.asideDataDir)) ? paths.asideDataDir : null;
      return { dataDir: paths.dataDir, previousDataDir: previous, restoredWith: `${tool.kind} ${tool.version}` };
    });
}

/**
 * Writes each manifest of $1 into $2 unless one of that name is there: a copy that keeps the original's mode and
 * owner, with the content read from stdin ("<name> <base64>" lines), renamed into place so the kubelet never reads a
 * half-written file (it ignores dotfiles). Prints every manifest name in $2 afterwards.
 */
const PUT_MANIFESTS = `set -e; from="$1"; to="$2"; mkdir -p "$to"
while read -r f b64; do
  [ -n "$f" ] || continue
  [ -e "$to/$f" ] && continue
  tmp="$to/.lifeboat-$f.tmp"
  cp -p "$from/$f" "$tmp"
  printf '%s' "$b64" | base64 -d > "$tmp"
  mv -n "$tmp" "$to/$f"; rm -f "$tmp"
done
for p in "$to"/*; do f="\${p##*/}"; case "$f" in .*) ;; *.yaml|*.yml|*.json) [ -e "$p" ] && echo "$f" ;; esac; done; true`;

/**
 * Puts the manifests back (new node: the backup's own) and waits for etcd health and kube-apiserver /readyz. Each
 * goes back as a copy annotated with this run (RECOVERY_ANNOTATION): the kubelet then sees new pods and starts them
 * at once, where byte-identical manifests would bring back the stopped pods under their old UIDs, crash back-off
 * included. The originals stay where the stop step put them (manifests-before), or in the backup's files.
 */
export function startControlPlane(deps: ActivityDeps) {
  return (input: { plan: RecoveryPlan; timeoutSeconds: number }): Promise<{ started: string[]; annotated?: string[] }> =>
    onTarget(deps, input.plan, async (s) => {
      const { paths, mode } = input.plan;
      const run = paths.runDir.split('/').pop()!;
      const source = mode === 'new-node' ? `${paths.controlPlaneFilesDir}/${paths.manifestsDir.split('/').pop()}` : paths.asideManifestsDir;
      // Which of the source's manifests are not back yet (a retried attempt skips those that are).
      const state = await s.run([
        'sh',
        '-c',
        'for p in "$1"/*; do f="${p##*/}"; case "$f" in .*) ;; *.yaml|*.yml|*.json) [ -e "$p" ] && [ ! -e "$2/$f" ] && echo "$f" ;; esac; done; true',
        'sh',
        source,
        paths.manifestsDir,
      ]);
      const pending = state.stdout.split('\n').filter(Boolean);
      const annotated: string[] = [];
      const lines: string[] = [];
      for (const [name, text] of await readManifests(s, source, pending)) {
        const out = annotateStaticPodManifest(text, name, run);
        if (out.annotated) annotated.push(name);
        lines.push(`${name} ${Buffer.from(out.text).toString('base64')}`);
      }
      // One round trip: the manifests go back, names printed.
      const put = await s.run(['sh', '-c', PUT_MANIFESTS, 'sh', source, paths.manifestsDir], { stdin: `${lines.join('\n')}\n` });
      const started = put.stdout.split('\n').filter(Boolean);
      await waitOnNode(
        s,
        'etcd to report healthy',
        input.timeoutSeconds,
        `${command(etcdctl(s.cluster, '--command-timeout=2s', 'endpoint', 'health'))} >/dev/null 2>&1`,
      );
      const api = await apiClientFor(s, input.plan);
      await waitUntil(`kube-apiserver /readyz at ${api.server}`, input.timeoutSeconds * 1000, () => api.ready(), undefined, 200);
      return { started, annotated };
    });
}
