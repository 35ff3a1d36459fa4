import { lstat, readdir, readlink, realpath } from 'node:fs/promises';
import { posix } from 'node:path';
import type { ClusterConfig } from '../config/schema';
import { archivePathOf, hostPathOf } from '../kube/static-pod-files';

/** The files of the unpacked archive, archive-relative (symbolic links listed as they are). */
export async function filesUnder(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(`${dir}/${rel}`, { withFileTypes: true }).catch(() => [])) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await filesUnder(dir, r)));
    else out.push(r);
  }
  return out;
}

/**
 * Where a file of the unpacked archive really is, archive-relative, or undefined when the archive does not hold it.
 * A symbolic link is followed as the node would follow it once the archive is back in place — the kubelet's
 * pki/kubelet-client-current.pem points at /var/lib/kubelet/pki/kubelet-client-<time>.pem — but only inside the
 * archive: a link is never read through to the drill host's own files.
 */
export async function archivedFile(cluster: ClusterConfig, dir: string, rel: string): Promise<string | undefined> {
  const root = await realpath(dir).catch(() => undefined);
  let current: string | undefined = posix.normalize(rel);
  for (let hop = 0; hop < 8 && current && root; hop++) {
    if (current.startsWith('../') || posix.isAbsolute(current)) return undefined;
    const full = `${dir}/${current}`;
    const s = await lstat(full).catch(() => undefined);
    if (!s) return undefined;
    if (s.isSymbolicLink()) {
      const target = await readlink(full);
      current = archivePathOf(cluster, posix.resolve(posix.dirname(hostPathOf(cluster, current)), target));
      continue;
    }
    if (!s.isFile()) return undefined;
    // A folder on the way could itself be a link out of the archive: the real path must stay inside it.
    const real = await realpath(full).catch(() => '');
    return real.startsWith(`${root}/`) ? current : undefined;
  }
  return undefined;
}
