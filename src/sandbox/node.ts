import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createNamespace, deleteNamespace, removeStaleNamespaces, sh } from './netns';
import { startProcess, waitFor, type ManagedProcess } from './processes';
import { kubeletFixtureScript } from './fixture-script';

export interface SandboxNodeOptions {
  name: string;
  /** Host folder that holds everything of this node (its /etc/kubernetes, /var/lib, sshd config, logs). */
  dir: string;
  /** Public key (OpenSSH format) allowed to log in as root. */
  authorizedKey: string;
  /** Folder with this node's etcd, etcdctl (and etcdutl) — they appear in /usr/local/bin on the node. */
  etcdBinDir: string;
  /** Image name -> binaries folder, for the kubelet fixture. */
  images: Record<string, string>;
  /** Take over the address of a node that is gone (its /24 index). */
  subnet?: number;
}

export interface PodStatus {
  file: string;
  name: string;
  containers: { name: string; running: boolean; pid?: number; restarts: number }[];
}

/**
 * A sandbox "machine": its own network namespace and address, its own sshd with a fresh host key, and — through a
 * private mount namespace — its own /etc/kubernetes, /var/lib and /usr/local/bin, so commands that arrive over SSH
 * see kubeadm's real paths. The kubelet test fixture runs there too.
 */
export interface SandboxNode {
  readonly name: string;
  readonly ip: string;
  readonly subnet: number;
  readonly netns: string;
  readonly dir: string;
  /** "ssh-ed25519 AAAA..." of this node's sshd: what a user pins in config. */
  readonly hostKey: string;
  /** Host path of a path as the node sees it (/etc/kubernetes/... and /var/lib/...). */
  path(nodePath: string): string;
  /** Runs a command inside the node's namespaces (not over SSH): for test setup and assertions. */
  exec(argv: readonly string[]): Promise<string>;
  pods(): Promise<PodStatus[]>;
  logs(): Promise<string>;
  destroy(): Promise<void>;
}

const NODE_INIT = `
set -e
root="$1"
mkdir -p /run/sshd
mount --bind "$root/etc/kubernetes" /etc/kubernetes
mount --bind "$root/var/lib" /var/lib
mount --bind "$root/usr/local/bin" /usr/local/bin
/usr/sbin/sshd -D -e -f "$root/sshd_config" >>"$root/log/sshd.log" 2>&1 &
node "$root/kubelet-fixture.js" "$root/kubelet-fixture.json" >>"$root/log/kubelet-fixture.log" 2>&1 &
trap 'kill -TERM $(jobs -p) 2>/dev/null; wait' TERM INT
wait
`;

export async function createSandboxNode(o: SandboxNodeOptions): Promise<SandboxNode> {
  await removeStaleNamespaces();
  const netns = `lifeboat-${process.pid}-${o.name}`;
  // The host needs mount points for the node's private views; they stay empty on the host itself.
  await mkdir('/etc/kubernetes', { recursive: true });
  for (const d of ['etc/kubernetes/manifests', 'etc/kubernetes/pki', 'var/lib/etcd', 'usr/local/bin', 'ssh', 'log', 'pods']) {
    await mkdir(join(o.dir, d), { recursive: true });
  }
  await rm(join(o.dir, 'var/lib/etcd'), { recursive: true, force: true }); // etcd creates it (0700) on first start
  for (const bin of ['etcd', 'etcdctl', 'etcdutl']) {
    if (existsSync(join(o.etcdBinDir, bin))) await symlink(join(o.etcdBinDir, bin), join(o.dir, 'usr/local/bin', bin)).catch(() => undefined);
  }
  await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${o.name}-host`, '-f', join(o.dir, 'ssh/host_ed25519')]);
  const hostKey = (await readFile(join(o.dir, 'ssh/host_ed25519.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  await writeFile(join(o.dir, 'ssh/authorized_keys'), `${o.authorizedKey.trim()}\n`, { mode: 0o600 });

  const { ip, subnet } = await createNamespace(netns, o.subnet);
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
  await writeFile(join(o.dir, 'kubelet-fixture.js'), await kubeletFixtureScript());
  await writeFile(
    join(o.dir, 'kubelet-fixture.json'),
    JSON.stringify({ manifestsDir: '/etc/kubernetes/manifests', stateDir: join(o.dir, 'pods'), images: o.images, pollMs: 250, graceMs: 10_000 }),
  );

  let init: ManagedProcess;
  try {
    init = startProcess(`node-${o.name}`, 'ip', ['netns', 'exec', netns, 'unshare', '--mount', '--propagation', 'private', '--', 'bash', '-c', NODE_INIT, 'node-init', o.dir], {
      logFile: join(o.dir, 'log/init.log'),
    });
    await waitFor(`sshd on node ${o.name} (${ip}:22, log: ${join(o.dir, 'log')})`, async () => {
      if (init.child.exitCode !== null) throw new Error(`node init exited with ${init.child.exitCode}`);
      return (await sh('ip', ['netns', 'exec', netns, 'ss', '-Htln', `sport = :22`])).includes(':22');
    }, 20_000, 100);
  } catch (err) {
    await deleteNamespace(netns);
    throw err;
  }
  const initPid = init.child.pid!;

  const node: SandboxNode = {
    name: o.name,
    ip,
    subnet,
    netns,
    dir: o.dir,
    hostKey,
    path(nodePath) {
      for (const [prefix, local] of [['/etc/kubernetes', 'etc/kubernetes'], ['/var/lib', 'var/lib']] as const) {
        if (nodePath === prefix || nodePath.startsWith(`${prefix}/`)) return join(o.dir, local, nodePath.slice(prefix.length));
      }
      throw new Error(`sandbox node ${o.name}: ${nodePath} is not under a node-private folder`);
    },
    exec: (argv) => sh('nsenter', ['-t', String(initPid), '-n', '-m', '--', ...argv]),
    async pods() {
      try {
        return JSON.parse(await readFile(join(o.dir, 'pods/status.json'), 'utf8')) as PodStatus[];
      } catch {
        return [];
      }
    },
    async logs() {
      const parts: string[] = [];
      for (const folder of ['log', 'pods']) {
        for (const f of await readdir(join(o.dir, folder)).catch(() => [] as string[])) {
          if (!f.endsWith('.log')) continue;
          const text = await readFile(join(o.dir, folder, f), 'utf8').catch(() => '');
          parts.push(`--- ${o.name}/${folder}/${f} (last 40 lines)\n${text.split('\n').slice(-40).join('\n')}`);
        }
      }
      return parts.join('\n');
    },
    async destroy() {
      await init.stop(15_000);
      await deleteNamespace(netns);
    },
  };
  return node;
}
