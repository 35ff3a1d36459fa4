import { mkdir, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PAUSE_IMAGE } from './images';
import { alive } from './netns';

/**
 * The container runtime and kubelet of a sandbox node: one containerd and one kubelet per node, started inside the
 * node's network and mount namespaces (hostNetwork pods land in containerd's network namespace; hostPath volumes
 * resolve in its mount namespace). Settings this machine kind needs, each for a reason:
 *
 * - containerd CRI `restrict_oom_score_adj` and kubelet `oomScoreAdj: 0`: without CAP_SYS_RESOURCE runc cannot lower
 *   a process's oom_score_adj ("can't get final child's PID from pipe: EOF");
 * - cgroup v1 with the cgroupfs driver (`SystemdCgroup = false`, `cgroupDriver: cgroupfs`, `failCgroupV1: false`),
 *   each kubelet under its own cgroup root;
 * - no swap check, no AppArmor, the locally built pause image as the sandbox image (nothing is pulled).
 */

/** Paths as the node sees them (its /var/lib and /run/containerd are its own). */
export const CONTAINERD_SOCKET = '/run/containerd/containerd.sock';
export const KUBELET_CONFIG = '/var/lib/kubelet/config.yaml';

export function containerdConfig(): string {
  return `version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "${CONTAINERD_SOCKET}"

[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/var/lib/containerd/cni/bin"
    conf_dir = "/var/lib/containerd/cni/net.d"
`;
}

/** Where the node's containerd looks for CNI configs (node-private, like the rest of /var/lib). */
export const CNI_CONF_DIR = '/var/lib/containerd/cni/net.d';

/**
 * The node's pod network: every control-plane pod uses the host network, so a loopback-only CNI network is enough for
 * the runtime to report NetworkReady (without one the kubelet keeps the Node NotReady, as on a kubeadm machine
 * before a CNI plugin is installed).
 */
export const CNI_CONFLIST = JSON.stringify({ cniVersion: '1.0.0', name: 'lifeboat-sandbox', plugins: [{ type: 'loopback' }] }, null, 2);

/**
 * The kubelet's configuration as kubeadm writes it to /var/lib/kubelet/config.yaml at init: client certificate
 * rotation from /var/lib/kubelet/pki, static pods from kubeadm's folder. Nothing machine-specific (backups carry this
 * file to a new machine): the cgroup root and the address are the machine's (kubeletMachineEnv).
 */
export function kubeletConfig(): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: /etc/kubernetes/manifests
containerRuntimeEndpoint: unix://${CONTAINERD_SOCKET}
rotateCertificates: true
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
oomScoreAdj: 0
volumePluginDir: /usr/libexec/kubernetes/kubelet-plugins/volume/exec
podLogsDir: /var/log/pods
enableServer: false
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: false }
authorization:
  mode: AlwaysAllow
# Static pods are critical and never evicted, but a full disk elsewhere on this machine must not make the kubelet
# garbage-collect the locally imported images (nothing could pull them back).
evictionHard: { memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%" }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`;
}

/** kubeadm's kubelet-start phase writes the flags it manages here; the sandbox runs containerd at its own socket. */
export function kubeadmFlagsEnv(): string {
  return `KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix://${CONTAINERD_SOCKET}"
`;
}

/** The machine's own kubelet settings (its /etc/default/kubelet): never in a backup. */
export function kubeletMachineEnv(o: { cgroupRoot: string; ip: string }): string {
  return `KUBELET_EXTRA_ARGS="--cgroup-root=${o.cgroupRoot} --node-ip=${o.ip} --v=2"
`;
}

// --- cgroups ------------------------------------------------------------------------------------------------------

const CGROUP_FS = '/sys/fs/cgroup';
/** Parent of every sandbox kubelet's cgroup root: /lifeboat/<node> in each v1 hierarchy. */
export const CGROUP_PARENT = 'lifeboat';

/** The v1 hierarchies (real mounts: cpu,cpuacct may also appear as symlinks); with `unified`, the v2 part too. */
async function hierarchies(withUnified = false): Promise<string[]> {
  const entries = await readdir(CGROUP_FS, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory() && (withUnified || e.name !== 'unified')).map((e) => join(CGROUP_FS, e.name));
}

/**
 * Creates /lifeboat/<name> in every cgroup v1 hierarchy (the kubelet checks that its cgroup root exists in each).
 * A new cpuset cgroup starts with no CPUs and no memory nodes: both are copied from the parent.
 */
export async function createCgroupRoot(name: string): Promise<string> {
  for (const h of await hierarchies()) {
    for (const dir of [join(h, CGROUP_PARENT), join(h, CGROUP_PARENT, name)]) {
      // recursive: no EEXIST when another run makes the shared parent at the same moment
      await mkdir(dir, { recursive: true });
      if (h.endsWith('/cpuset')) {
        for (const f of ['cpuset.cpus', 'cpuset.mems']) {
          const current = (await readFile(join(dir, f), 'utf8')).trim();
          if (!current) await writeFile(join(dir, f), (await readFile(join(dir, '..', f), 'utf8')).trim());
        }
      }
    }
  }
  return `/${CGROUP_PARENT}/${name}`;
}

/** Removes a node's cgroup tree, deepest first; retries while the last processes are still leaving. */
export async function removeCgroupRoot(name: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const removeTree = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await removeTree(join(dir, e.name));
    }
    for (;;) {
      try {
        await rmdir(dir);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return;
        if (Date.now() > deadline) throw new Error(`cannot remove cgroup ${dir}: ${(err as Error).message}`, { cause: err });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  // runc also mirrors the containers' cgroups into the unified hierarchy of a hybrid setup: those go too.
  for (const h of await hierarchies(true)) await removeTree(join(h, CGROUP_PARENT, name));
}

/** Cgroup roots under /lifeboat that `isStale` picks (left behind by a test run that died). */
export async function staleCgroupRoots(isStale: (name: string) => boolean): Promise<string[]> {
  const names = new Set<string>();
  for (const h of await hierarchies(true)) {
    for (const e of await readdir(join(h, CGROUP_PARENT), { withFileTypes: true }).catch(() => []))
      if (e.isDirectory() && isStale(e.name)) names.add(e.name);
  }
  return [...names];
}

// --- host sysctls -------------------------------------------------------------------------------------------------

/**
 * The kubelet sets these machine-wide (not per namespace) when it starts (`setupKernelTunables`). They are saved
 * before the first sandbox kubelet of this process starts and put back when the last one is gone. The saved values
 * are also kept in a file, so a test run that died is repaired by the next one.
 */
export const KUBELET_SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
];
const SAVED_SYSCTLS = '/run/lifeboat-sandbox-sysctls.json';
let kubeletsRunning = 0;
let saved: Record<string, string> | undefined;

async function readSysctls(): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const k of KUBELET_SYSCTLS) values[k] = (await readFile(join('/proc/sys', k), 'utf8')).trim();
  return values;
}

async function writeSysctls(values: Record<string, string>): Promise<void> {
  for (const [k, v] of Object.entries(values)) await writeFile(join('/proc/sys', k), v).catch(() => undefined);
}

/** Before a kubelet starts. */
export async function saveHostSysctls(): Promise<void> {
  kubeletsRunning += 1;
  if (kubeletsRunning > 1) return;
  const previous = await readFile(SAVED_SYSCTLS, 'utf8').then(
    (t) => JSON.parse(t) as { pid: number; values: Record<string, string> },
    () => undefined,
  );
  // A file from a run that died holds the machine's values; the current ones may be the kubelet's.
  if (previous && previous.pid !== process.pid && !alive(previous.pid)) saved = previous.values;
  else saved = previous?.values ?? (await readSysctls());
  await writeFile(SAVED_SYSCTLS, JSON.stringify({ pid: process.pid, values: saved }));
}

/** After a kubelet is gone (also after a failed start). */
export async function restoreHostSysctls(): Promise<void> {
  kubeletsRunning = Math.max(0, kubeletsRunning - 1);
  if (kubeletsRunning > 0 || !saved) return;
  await writeSysctls(saved);
  saved = undefined;
  const owner = await readFile(SAVED_SYSCTLS, 'utf8').then(
    (t) => (JSON.parse(t) as { pid: number }).pid,
    () => undefined,
  );
  if (owner === process.pid) await rm(SAVED_SYSCTLS, { force: true });
}

/** At the start of a run: a run that died left the kubelet's values in place; put the saved ones back. */
export async function repairHostSysctls(): Promise<void> {
  if (kubeletsRunning > 0) return;
  const previous = await readFile(SAVED_SYSCTLS, 'utf8').then(
    (t) => JSON.parse(t) as { pid: number; values: Record<string, string> },
    () => undefined,
  );
  if (previous && !alive(previous.pid)) {
    await writeSysctls(previous.values);
    await rm(SAVED_SYSCTLS, { force: true });
  }
}
