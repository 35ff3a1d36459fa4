import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, writeFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { placeContainerdRoot } from './containerd-root';
import { alive, createNamespace, deleteNamespace, holdSubnet, removeStaleNamespaces, sh } from './netns';
import { startProcess, waitFor, type ManagedProcess } from '../src/devserver/processes';
import {
  containerdConfig,
  createCgroupRoot,
  CNI_CONF_DIR,
  CNI_CONFLIST,
  KUBELET_CONFIG,
  kubeletMachineEnv,
  removeCgroupRoot,
  repairHostSysctls,
  restoreHostSysctls,
  saveHostSysctls,
  staleCgroupRoots,
} from './runtime';

export interface SandboxNodeOptions {
  name: string;
  /** Host folder that holds everything of this node (its /etc/kubernetes, /var/lib, sshd config, logs). */
  dir: string;
  /** Public key (OpenSSH format) allowed to log in as root. */
  authorizedKey: string;
  /** Folder with this node's etcd, etcdctl (and etcdutl) — they appear in /usr/local/bin on the node. */
  etcdBinDir: string;
  /** The node's container runtime and kubelet. */
  kubelet: {
    binary: string;
    /** crictl, put in the node's /usr/local/bin (where a kubeadm node has it). */
    crictl: string;
    /** docker-save tarballs in the node's containerd before the kubelet starts (sandbox/images.ts, containerd-root.ts). */
    images: string[];
  };
  /** Take over the address of a node that is gone (its /24 index). */
  subnet?: number;
}

export interface PodStatus {
  /** The pod's name as the kubelet runs it: <manifest name>-<node name>. */
  name: string;
  namespace: string;
  uid: string;
  containers: { id: string; name: string; running: boolean; pid?: number; restarts: number }[];
}

/**
 * A sandbox "machine": its own network namespace and address, its own sshd with a fresh host key, and — through a
 * private mount namespace — its own /etc/kubernetes, /var/lib, /var/log, /usr/local/bin, /usr/libexec/kubernetes
 * and /run/containerd, so commands that arrive over SSH see kubeadm's real paths. It runs its own containerd and a
 * real kubelet (standalone: static pods from /etc/kubernetes/manifests), under its own cgroup root.
 */
export interface SandboxNode {
  readonly name: string;
  readonly ip: string;
  readonly subnet: number;
  readonly netns: string;
  readonly dir: string;
  /** "ssh-ed25519 AAAA..." of this node's sshd: what a user pins in config. */
  readonly hostKey: string;
  /** Host path of a path as the node sees it (/etc/kubernetes/..., /var/lib/... and /var/log/...). */
  path(nodePath: string): string;
  /** Runs a command inside the node's namespaces (not over SSH): for test setup and assertions. */
  exec(argv: readonly string[]): Promise<string>;
  /** crictl on the node (its own containerd), for test setup and assertions. */
  crictl(args: readonly string[]): Promise<string>;
  /** The kubelet's ready pods, each with its containers (latest attempt per container name). */
  pods(): Promise<PodStatus[]>;
  logs(): Promise<string>;
  /** `keepAddress`: the subnet stays this process's until a node pinned to it takes it over (as a replacement does). */
  destroy(options?: { keepAddress?: boolean }): Promise<void>;
}

/** Mount points the node's private views need on the host; they stay empty there. */
const HOST_MOUNT_POINTS = ['/etc/kubernetes', '/usr/libexec/kubernetes', '/run/containerd'];

/**
 * kubeadm's kubelet unit (10-kubeadm.conf), restarted like systemd's Restart=always: the flags come from
 * /var/lib/kubelet/kubeadm-flags.env (written by kubeadm, carried by backups) and the machine's own settings
 * (kubelet.env in the node folder, as /etc/default/kubelet: its cgroup root, its address). On a freshly provisioned
 * machine /var/lib/kubelet/config.yaml does not exist yet and the kubelet exits at once, again and again, until
 * kubeadm (or a recovery) writes it and restarts it — as on a real machine. `systemctl restart kubelet` on the node
 * (SYSTEMCTL) stops the running kubelet so the loop starts it again without waiting.
 */
const KUBELET_SERVICE = `
while :; do
  KUBELET_KUBEADM_ARGS=""; KUBELET_EXTRA_ARGS=""
  [ -f /var/lib/kubelet/kubeadm-flags.env ] && . /var/lib/kubelet/kubeadm-flags.env
  . "$root/kubelet.env"
  "$kubelet" --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf --config=${KUBELET_CONFIG} $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS >>"$root/log/kubelet.log" 2>&1 &
  echo $! > "$root/kubelet.pid"
  wait $! || true
  rm -f "$root/kubelet.pid"
  [ -f "$root/kubelet.restart" ] && rm -f "$root/kubelet.restart" || sleep 2
done
`;

/**
 * Runs as the node's first process, inside its network namespace, a private mount namespace and its own hostname:
 * the node-private folders, sshd, containerd (its images in place before anything can ask for them), then the kubelet as
 * systemd runs it on a kubeadm machine (KUBELET_SERVICE).
 */
const NODE_INIT = `
set -e
root="$1"; name="$2"; kubelet="$3"
hostname "$name"
mkdir -p /run/sshd
mount --bind "$root/etc/kubernetes" /etc/kubernetes
mount --bind "$root/var/lib" /var/lib
mount --bind "$root/var/log" /var/log
mount --bind "$root/usr/local/bin" /usr/local/bin
mount --bind "$root/usr/libexec/kubernetes" /usr/libexec/kubernetes
mount -t tmpfs -o mode=0711 containerd-state /run/containerd
trap 'kill -TERM $(jobs -p) 2>/dev/null; [ -f "$root/kubelet.pid" ] && kill -TERM "$(cat "$root/kubelet.pid")" 2>/dev/null; wait' TERM INT
/usr/sbin/sshd -D -e -f "$root/sshd_config" >>"$root/log/sshd.log" 2>&1 &
containerd --config "$root/containerd.toml" >>"$root/log/containerd.log" 2>&1 &
i=0
until ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; do
  i=$((i+1)); [ $i -lt 300 ] || { echo "containerd did not start (log: $root/log/containerd.log)" >&2; exit 1; }; sleep 0.1
done
touch "$root/runtime-started"
${KUBELET_SERVICE}
`;

/** The node's systemctl, for the kubelet unit only: what a recovery (and kubeadm) calls on a real machine. */
function systemctlScript(root: string): string {
  return `#!/bin/sh
# Sandbox stand-in for systemd's systemctl: the kubelet runs under a restart loop (sandbox/node.ts), not systemd.
pid="$(cat ${root}/kubelet.pid 2>/dev/null)"
case "$1 $2" in
  "restart kubelet"|"restart kubelet.service"|"start kubelet"|"start kubelet.service")
    touch ${root}/kubelet.restart; [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; exit 0 ;;
  "is-active kubelet"|"is-active kubelet.service")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo active; exit 0; else echo activating; exit 3; fi ;;
  "daemon-reload "*|"enable kubelet"|"enable kubelet.service") exit 0 ;;
  *) echo "systemctl (lifeboat sandbox): only the kubelet unit is managed here: $*" >&2; exit 1 ;;
esac
`;
}

/** Every process of the node: in its network namespace, or (a straggler that left it) in its cgroup tree. */
async function nodeProcesses(netns: string, cgroupName: string): Promise<number[]> {
  const pids = new Set((await sh('ip', ['netns', 'pids', netns]).catch(() => '')).split(/\s+/).filter(Boolean).map(Number));
  const out = await sh('sh', [
    '-c',
    `cat /sys/fs/cgroup/*/lifeboat/${cgroupName}/cgroup.procs /sys/fs/cgroup/*/lifeboat/${cgroupName}/*/cgroup.procs /sys/fs/cgroup/*/lifeboat/${cgroupName}/*/*/cgroup.procs /sys/fs/cgroup/*/lifeboat/${cgroupName}/*/*/*/cgroup.procs /sys/fs/cgroup/*/lifeboat/${cgroupName}/*/*/*/*/cgroup.procs 2>/dev/null; true`,
  ]).catch(() => '');
  for (const p of out.split(/\s+/).filter(Boolean)) pids.add(Number(p));
  pids.delete(process.pid);
  return [...pids];
}

/** Kills every process of the node (SIGKILL), again and again until none is left: containers, shims, kubelet, containerd. */
async function killNode(netns: string, cgroupName: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = (await nodeProcesses(netns, cgroupName)).filter(alive);
    if (!pids.length) return;
    if (Date.now() > deadline) throw new Error(`node ${netns}: processes still alive after SIGKILL: ${pids.join(' ')}`);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Namespaces, cgroups and host settings left by a test run that died. */
async function removeStaleNodes(): Promise<void> {
  await removeStaleNamespaces();
  for (const name of await staleCgroupRoots((n) => {
    const m = /^lifeboat-(\d+)-/.exec(n);
    return !!m && Number(m[1]) !== process.pid && !alive(Number(m[1]));
  })) {
    await killNode(`none-${name}`, name).catch(() => undefined);
    await removeCgroupRoot(name).catch(() => undefined);
  }
  await repairHostSysctls();
}

export async function createSandboxNode(o: SandboxNodeOptions): Promise<SandboxNode> {
  await removeStaleNodes();
  const netns = `lifeboat-${process.pid}-${o.name}`;
  // The host needs mount points for the node's private views; they stay empty on the host itself.
  for (const d of HOST_MOUNT_POINTS) await mkdir(d, { recursive: true });
  for (const d of [
    'etc/kubernetes/manifests',
    'etc/kubernetes/pki',
    'var/lib/etcd',
    'var/lib/kubelet',
    'var/lib/containerd',
    'var/log',
    'usr/local/bin',
    'usr/libexec/kubernetes',
    'ssh',
    'log',
  ]) {
    await mkdir(join(o.dir, d), { recursive: true });
  }
  await rm(join(o.dir, 'var/lib/etcd'), { recursive: true, force: true }); // etcd creates it (0700) on first start
  for (const bin of ['etcd', 'etcdctl', 'etcdutl']) {
    if (existsSync(join(o.etcdBinDir, bin)))
      await symlink(join(o.etcdBinDir, bin), join(o.dir, 'usr/local/bin', bin)).catch(() => undefined);
  }
  await symlink(o.kubelet.crictl, join(o.dir, 'usr/local/bin/crictl')).catch(() => undefined);
  await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${o.name}-host`, '-f', join(o.dir, 'ssh/host_ed25519')]);
  const hostKey = (await readFile(join(o.dir, 'ssh/host_ed25519.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  await writeFile(join(o.dir, 'ssh/authorized_keys'), `${o.authorizedKey.trim()}\n`, { mode: 0o600 });

  let init: ManagedProcess | undefined;
  let sysctlsSaved = false;
  let cgroupCreated = false;
  const teardown = async () => {
    const problems: string[] = [];
    // SIGTERM to the init's group (sshd, containerd, kubelet), SIGKILL after 5 s; then whatever is left (the shims
    // and the containers run in process groups of their own).
    await init?.stop(5_000);
    await killNode(netns, netns).catch((err: Error) => problems.push(err.message));
    if (cgroupCreated) await removeCgroupRoot(netns).catch((err: Error) => problems.push(err.message));
    if (sysctlsSaved) await restoreHostSysctls().catch((err: Error) => problems.push(`restoring host sysctls: ${err.message}`));
    // The kernel tears a namespace down in the background; its veth pair (and the node's address) can outlive it
    // for a while. Deleting the host's end first removes the pair now, so a replacement can take the address at once,
    // and while the link is still this node's: after the namespace is gone, another run may have made lbh<N> anew.
    if (subnet !== undefined) await sh('ip', ['link', 'del', `lbh${subnet}`]).catch(() => undefined);
    await deleteNamespace(netns);
    if (problems.length) throw new Error(`tearing down node ${o.name}: ${problems.join('; ')}`);
  };

  let ip: string;
  let subnet: number | undefined;
  try {
    ({ ip, subnet } = await createNamespace(netns, o.subnet));
    await writeFile(
      join(o.dir, 'sshd_config'),
      [
        `ListenAddress ${ip}:22`,
        `HostKey ${join(o.dir, 'ssh/host_ed25519')}`,
        `PidFile ${join(o.dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(o.dir, 'ssh/authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'PrintMotd no',
        'MaxSessions 50',
        'MaxStartups 50:30:100',
        'Subsystem sftp internal-sftp',
        '',
      ].join('\n'),
    );
    const cgroupRoot = await createCgroupRoot(netns);
    cgroupCreated = true;
    await writeFile(join(o.dir, 'containerd.toml'), containerdConfig());
    // The machine as provisioned: a container runtime with a CNI config, the kubelet installed but not configured
    // (kubeadm init or a recovery writes /var/lib/kubelet/config.yaml and restarts it).
    await placeContainerdRoot(o.kubelet.images, join(o.dir, 'var/lib/containerd'));
    await mkdir(join(o.dir, CNI_CONF_DIR.replace(/^\/var\/lib\//, 'var/lib/')), { recursive: true });
    await writeFile(join(o.dir, CNI_CONF_DIR.replace(/^\/var\/lib\//, 'var/lib/'), '10-loopback.conflist'), CNI_CONFLIST);
    await writeFile(join(o.dir, 'kubelet.env'), kubeletMachineEnv({ cgroupRoot, ip }));
    await writeFile(join(o.dir, 'usr/local/bin/systemctl'), systemctlScript(o.dir), { mode: 0o755 });
    await saveHostSysctls();
    sysctlsSaved = true;

    // nsenter, not `ip netns exec`: the latter mounts a fresh /sys, which hides the cgroup mounts the kubelet needs.
    init = startProcess(
      `node-${o.name}`,
      'nsenter',
      [
        `--net=/run/netns/${netns}`,
        '--',
        'unshare',
        '--mount',
        '--uts',
        '--propagation',
        'private',
        '--',
        'bash',
        '-c',
        NODE_INIT,
        'node-init',
        o.dir,
        o.name,
        o.kubelet.binary,
      ],
      {
        logFile: join(o.dir, 'log/init.log'),
      },
    );
    const running = () => {
      if (init!.child.exitCode !== null) throw new Error(`node init exited with ${init!.child.exitCode}: ${readInitLog(o.dir)}`);
    };
    await waitFor(
      `sshd on node ${o.name} (${ip}:22, log: ${join(o.dir, 'log')})`,
      async () => {
        running();
        return (await sh('ip', ['netns', 'exec', netns, 'ss', '-Htln', `sport = :22`])).includes(':22');
      },
      20_000,
      100,
    );
    await waitFor(
      `containerd and images on node ${o.name} (log: ${join(o.dir, 'log/containerd.log')})`,
      async () => {
        running();
        return existsSync(join(o.dir, 'runtime-started'));
      },
      120_000,
      100,
    );
  } catch (err) {
    const logs = await nodeLogs(o.dir).catch(() => '');
    await teardown().catch(() => undefined);
    throw new Error(`${(err as Error).message}\n${logs}`, { cause: err });
  }
  const initPid = init.child.pid!;
  let tornDown: Promise<void> | undefined;
  const exec = (argv: readonly string[]) => sh('nsenter', ['-t', String(initPid), '-n', '-m', '-u', '--', ...argv]);
  const crictl = (args: readonly string[]) =>
    exec(['/usr/local/bin/crictl', '--runtime-endpoint', 'unix:///run/containerd/containerd.sock', ...args]);

  const node: SandboxNode = {
    name: o.name,
    ip,
    subnet: subnet,
    netns,
    dir: o.dir,
    hostKey,
    path(nodePath) {
      for (const [prefix, local] of [
        ['/etc/kubernetes', 'etc/kubernetes'],
        ['/var/lib', 'var/lib'],
        ['/var/log', 'var/log'],
      ] as const) {
        if (nodePath === prefix || nodePath.startsWith(`${prefix}/`)) return join(o.dir, local, nodePath.slice(prefix.length));
      }
      throw new Error(`sandbox node ${o.name}: ${nodePath} is not under a node-private folder`);
    },
    exec,
    crictl,
    async pods() {
      const sandboxes = (JSON.parse(await crictl(['pods', '--state', 'ready', '-o', 'json'])) as { items: CriPod[] }).items ?? [];
      const containers = (JSON.parse(await crictl(['ps', '-a', '-o', 'json'])) as { containers: CriContainer[] }).containers ?? [];
      const pods: PodStatus[] = [];
      for (const p of sandboxes) {
        const latest = new Map<string, CriContainer>();
        for (const c of containers.filter((c) => c.podSandboxId === p.id)) {
          const seen = latest.get(c.metadata.name);
          if (!seen || c.metadata.attempt > seen.metadata.attempt) latest.set(c.metadata.name, c);
        }
        const list: PodStatus['containers'] = [];
        for (const c of latest.values()) {
          const running = c.state === 'CONTAINER_RUNNING';
          const pid = running
            ? Number((await crictl(['inspect', '-o', 'go-template', '--template', '{{.info.pid}}', c.id]).catch(() => '')).trim()) ||
              undefined
            : undefined;
          list.push({ id: c.id, name: c.metadata.name, running, pid, restarts: c.metadata.attempt });
        }
        pods.push({ name: p.metadata.name, namespace: p.metadata.namespace, uid: p.metadata.uid, containers: list });
      }
      return pods;
    },
    logs: () => nodeLogs(o.dir),
    destroy: async (options) => {
      if (options?.keepAddress) await holdSubnet(subnet);
      return (tornDown ??= teardown()); // once: the host sysctls are counted per kubelet
    },
  };
  return node;
}

interface CriPod {
  id: string;
  metadata: { name: string; namespace: string; uid: string };
}
interface CriContainer {
  id: string;
  podSandboxId: string;
  state: string;
  metadata: { name: string; attempt: number };
}

function readInitLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'log/init.log'), 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '';
  }
}

/** The last lines of the node's own logs (init, sshd, containerd, kubelet) and of every container log. */
async function nodeLogs(dir: string): Promise<string> {
  const files: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else if (e.name.endsWith('.log')) files.push(join(d, e.name));
    }
  };
  await walk(join(dir, 'log'));
  await walk(join(dir, 'var/log/pods'));
  const parts: string[] = [];
  for (const f of files) {
    const text = await readFile(f, 'utf8').catch(() => '');
    parts.push(`--- ${relative(join(dir, '..'), f)} (last 40 lines)\n${text.split('\n').slice(-40).join('\n')}`);
  }
  return parts.join('\n');
}
