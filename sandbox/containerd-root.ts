import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { sh } from './netns';
import { containerdConfig } from './runtime';

/**
 * A containerd root (/var/lib/containerd) with a node's images already imported and unpacked, built once per machine
 * next to the image tarballs and copied into each new node as hard links (sandbox/node.ts). Importing into every
 * node hashed, stored and unpacked ~250 MB of control-plane binaries each time: most of the ~4 CPU-minutes
 * containerd and `ctr` took over a suite (docs/test-bed.md). What a node sees is the same as after its own import:
 * the images in containerd's k8s.io namespace, unpacked for the overlayfs snapshotter.
 *
 * Hard links are safe here because nothing writes these files in place: content blobs are read-only, unpacked
 * layers are only ever overlay lower dirs, and removal unlinks. The two bolt databases are written in place, so
 * each node gets copies of those (placeContainerdRoot).
 */

/** Bump when what goes into a root changes: every cached root is rebuilt. */
const FORMAT = 1;

/**
 * Starts a containerd with the nodes' own config in a private mount namespace whose /var/lib/containerd is the new
 * root and /run/containerd a fresh tmpfs, imports the images, and stops it, so the databases are at rest.
 */
const BUILD = `
set -e
root="$1"; log="$2"; shift 2
mount -t tmpfs -o mode=0711 containerd-state /run/containerd
mount --bind "$root" /var/lib/containerd
containerd --config "$root.toml" >>"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
i=0
until ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; do
  i=$((i+1)); [ $i -lt 300 ] || { echo "containerd did not start (log: $log)" >&2; exit 1; }; sleep 0.1
done
for image in "$@"; do ctr --address /run/containerd/containerd.sock -n k8s.io images import "$image" >/dev/null; done
`;

async function key(images: readonly string[]): Promise<string> {
  const containerd = (await sh('containerd', ['--version'])).trim();
  return createHash('sha256')
    .update(JSON.stringify({ FORMAT, containerd, images: images.map((i) => basename(i)), config: containerdConfig() }))
    .digest('hex')
    .slice(0, 16);
}

/** The root for these image tarballs (their names carry their content keys), built unless it is cached. */
export async function ensureContainerdRoot(images: readonly string[]): Promise<string> {
  if (!images.length) throw new Error('a containerd root needs at least one image (the pause image)');
  const rootsDir = join(dirname(images[0]), 'containerd-roots');
  const root = join(rootsDir, await key(images));
  if (existsSync(root)) return root;

  await mkdir(rootsDir, { recursive: true });
  await mkdir('/run/containerd', { recursive: true }); // the mount point of the builder's private state
  await mkdir('/var/lib/containerd', { recursive: true }); // ...and of its root
  const work = await mkdtemp(join(rootsDir, '.build-'));
  try {
    const staged = join(work, 'root');
    await mkdir(staged, { mode: 0o711 });
    await writeFile(`${staged}.toml`, containerdConfig());
    try {
      await sh('unshare', [
        '--mount',
        '--propagation',
        'private',
        '--',
        'bash',
        '-c',
        BUILD,
        'containerd-root',
        staged,
        join(work, 'containerd.log'),
        ...images,
      ]);
    } catch (err) {
      const log = await sh('tail', ['-n', '20', join(work, 'containerd.log')]).catch(() => '');
      throw new Error(`building the sandbox nodes' containerd root failed: ${(err as Error).message}\n${log}`, { cause: err });
    }
    // Atomic: a lane that built the same root at the same time keeps the first one.
    await rename(staged, root).catch((err: NodeJS.ErrnoException) => {
      if (!existsSync(root)) throw err;
    });
    return root;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Puts the images' root into a new node's /var/lib/containerd (`dest`, a host path that must be empty): hard links
 * where the cache and the node folder share a mount (the kernel refuses links across mounts, bind mounts included),
 * a copy otherwise. Runs on the host before the node starts, so its containerd finds them at its first start.
 */
export async function placeContainerdRoot(images: readonly string[], dest: string): Promise<void> {
  const root = await ensureContainerdRoot(images);
  await mkdir(dest, { recursive: true });
  try {
    await sh('cp', ['-al', `${root}/.`, dest]);
  } catch {
    await rm(dest, { recursive: true, force: true }); // a copy over half-made links would write through them
    await sh('cp', ['-a', `${root}/.`, dest]);
  }
  for (const db of await databases(root)) {
    await rm(join(dest, db));
    await copyFile(join(root, db), join(dest, db));
  }
}

/** The bolt databases of a containerd root (metadata, snapshotter), relative to it. */
async function databases(root: string): Promise<string[]> {
  const dbs: string[] = [];
  for (const plugin of await readdir(root, { withFileTypes: true })) {
    if (!plugin.isDirectory()) continue;
    for (const f of await readdir(join(root, plugin.name))) if (f.endsWith('.db')) dbs.push(join(plugin.name, f));
  }
  if (dbs.length < 2) throw new Error(`containerd root ${root} lacks its databases (found: ${dbs.join(', ') || 'none'})`);
  return dbs;
}
