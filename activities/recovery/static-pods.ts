import { activityContext } from '../heartbeat';
import type { TargetSession } from './on-target';

/**
 * Stopping the control plane's static pods once their manifests have left the manifests folder.
 *
 * The kubelet stops a static pod whose manifest goes with the pod's full termination grace period, and
 * kube-apiserver uses all of it (30 s by default: measured on a real kubelet, it keeps its port open while it
 * drains). That grace exists to drain requests to another API server behind a load balancer; on a single control
 * plane that is being restored there is none, and whatever it would still serve is about to be replaced. It keeps
 * no state of its own (every write is acknowledged only once etcd has it). So the engine shortens the wait through
 * the container runtime, where `crictl` reaches it on the node: `crictl stop --timeout 2` (SIGTERM, then SIGKILL
 * after 2 s) for the static pods' containers, once the kubelet has seen the manifests go (otherwise it would
 * restart what was stopped). etcd is left to its own graceful stop (SIGTERM, which it handles in well under a
 * second): its data dir becomes the copy a rollback returns to, so it must be closed cleanly. The wait ends when
 * etcd's and kube-apiserver's ports are closed and, with the CRI, no container of a static pod runs.
 *
 * The manifests themselves are never edited to stop faster (a lower terminationGracePeriodSeconds): they are the
 * user's, and backups and kubeadm upgrades read them. Without crictl (or a runtime it reaches) the wait is the
 * kubelet's, as before.
 */

/** The kubelet watches the folder (inotify): it has seen the manifests go well within this. */
export const FORCE_AFTER_MS = 1_000;
/** `crictl stop --timeout`: SIGTERM, then SIGKILL after this many seconds. */
export const CRI_STOP_TIMEOUT_SECONDS = 2;

export interface CriContainer {
  id: string;
  name: string;
  pod: string;
  etcd: boolean;
}

export interface ControlPlaneState {
  listening: number[];
  /** Why the CRI could not be used (no crictl, no runtime it reaches); undefined when it could. */
  criUnavailable?: string;
  /** Running containers of static pods (the kubelet's file source). */
  running: CriContainer[];
}

const STATE_SCRIPT = `ss -Htln 2>/dev/null | awk '{print $4}'
echo '--- cri'
command -v crictl >/dev/null 2>&1 || { echo 'crictl is not installed on the node'; exit 0; }
pods=$(timeout 10 crictl pods -o json 2>/dev/null) || { echo "crictl cannot list pods: $(timeout 10 crictl pods 2>&1 | tail -1)"; exit 0; }
containers=$(timeout 10 crictl ps --state running -o json 2>/dev/null) || { echo "crictl cannot list containers: $(timeout 10 crictl ps 2>&1 | tail -1)"; exit 0; }
echo '--- pods'; printf '%s\\n' "$pods"; echo '--- containers'; printf '%s\\n' "$containers"`;

interface PodsJson {
  items?: {
    id: string;
    metadata?: { name?: string; namespace?: string };
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  }[];
}
interface ContainersJson {
  containers?: { id: string; podSandboxId: string; metadata?: { name?: string }; state?: string }[];
}

/** A static pod by its manifest: the kubelet runs it as <name>-<node name> in its namespace. */
export interface ManifestPod {
  namespace: string;
  name: string;
}

function fromManifest(pod: { metadata?: { name?: string; namespace?: string } }, manifests: ManifestPod[]): boolean {
  const namespace = pod.metadata?.namespace ?? '';
  const name = pod.metadata?.name ?? '';
  return manifests.some((m) => m.namespace === namespace && name.startsWith(`${m.name}-`));
}

/** Parses STATE_SCRIPT's output (exported for the unit test); only the static pods of `manifests` count. */
export function parseControlPlaneState(out: string, ports: number[], manifests: ManifestPod[]): ControlPlaneState {
  const [portsPart = '', rest = ''] = out.split('--- cri\n');
  const open = new Set(portsPart.split('\n').map((a) => Number(a.trim().split(':').pop())));
  const listening = ports.filter((p) => open.has(p));
  const podsAt = rest.indexOf('--- pods\n');
  const containersAt = rest.indexOf('--- containers\n');
  if (podsAt < 0 || containersAt < 0) return { listening, criUnavailable: rest.trim() || 'crictl gave no answer', running: [] };
  try {
    const pods = JSON.parse(rest.slice(podsAt + 9, containersAt)) as PodsJson;
    const containers = JSON.parse(rest.slice(containersAt + 15)) as ContainersJson;
    const staticPods = new Map(
      (pods.items ?? [])
        .filter((p) => p.annotations?.['kubernetes.io/config.source'] === 'file' && fromManifest(p, manifests))
        .map((p) => [p.id, p] as const),
    );
    const running: CriContainer[] = [];
    for (const c of containers.containers ?? []) {
      const pod = staticPods.get(c.podSandboxId);
      if (!pod || (c.state && c.state !== 'CONTAINER_RUNNING')) continue;
      const name = c.metadata?.name ?? c.id;
      running.push({
        id: c.id,
        name,
        pod: `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? pod.id}`,
        etcd: pod.labels?.component === 'etcd' || name === 'etcd',
      });
    }
    return { listening, running };
  } catch (err) {
    return { listening, criUnavailable: `crictl's answer did not parse: ${(err as Error).message}`, running: [] };
  }
}

export async function controlPlaneState(s: TargetSession, ports: number[], manifests: ManifestPod[]): Promise<ControlPlaneState> {
  const r = await s.run(['sh', '-c', STATE_SCRIPT], { allowFailure: true });
  return parseControlPlaneState(r.stdout, ports, manifests);
}

/**
 * After the manifests left: waits until `ports` are closed and no container of their static pods runs, shortening
 * non-etcd containers' stop through the CRI (see above). Returns what was stopped that way, or why the CRI was not
 * used; throws `timeout` (with what still runs) when the deadline passes.
 */
export async function waitForStaticPodsToStop(
  s: TargetSession,
  o: {
    ports: number[];
    manifests: ManifestPod[];
    timeoutSeconds: number;
    movedAt: number;
    onTimeout: (state: ControlPlaneState) => Error;
    everyMs?: number;
  },
): Promise<{ forced: string[]; criUnavailable?: string }> {
  const deadline = Date.now() + o.timeoutSeconds * 1000;
  const ctx = activityContext();
  const forced = new Map<string, CriContainer>();
  let criUnavailable: string | undefined;
  for (;;) {
    const state = await controlPlaneState(s, o.ports, o.manifests);
    criUnavailable = state.criUnavailable;
    if (!state.listening.length && !state.running.length) break;
    if (Date.now() > deadline) throw o.onTimeout(state);
    const toStop = state.running.filter((c) => !c.etcd && !forced.has(c.id));
    if (toStop.length && Date.now() - o.movedAt >= FORCE_AFTER_MS) {
      for (const c of toStop) forced.set(c.id, c);
      const ids = toStop.map((c) => c.id);
      // In parallel: crictl stop takes one container after another, each up to the timeout.
      await s.run(
        [
          'sh',
          '-c',
          `for id in "$@"; do timeout 30 crictl stop --timeout ${CRI_STOP_TIMEOUT_SECONDS} "$id" >/dev/null 2>&1 & done; wait`,
          'sh',
          ...ids,
        ],
        { allowFailure: true },
      );
      continue;
    }
    ctx?.heartbeat({
      waitingFor: `control plane to stop: ${[...state.listening.map((p) => `port ${p}`), ...state.running.map((c) => c.name)].join(', ')}`,
    });
    if (ctx?.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
    await new Promise((r) => setTimeout(r, o.everyMs ?? 250));
  }
  return { forced: [...new Set([...forced.values()].map((c) => c.name))], criUnavailable };
}
