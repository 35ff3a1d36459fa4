import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { sh } from './netns';

/**
 * Container images for the sandbox nodes, built here from the cached binaries: nothing is pulled from a registry.
 * Each image is a docker-save tarball (what `ctr -n k8s.io images import` reads): one uncompressed layer with the
 * binaries in /usr/local/bin (plus, for a dynamically linked binary, the libc and loader it needs, found by ldd),
 * a config with the layer's diff_id, and manifest.json naming the image (RepoTags). Tarballs are cached next to the
 * binaries, keyed by what went into them, so a node only imports.
 */
export interface ImageSpec {
  /** Full reference, as a manifest names it: registry.k8s.io/etcd:3.6.16-0. */
  ref: string;
  /** Host file -> path inside the image. */
  files: { from: string; to: string }[];
  entrypoint?: string[];
}

/** Bump when the layout of the tarballs changes: every cached image is rebuilt. */
const FORMAT = 1;
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Fixed, so the same inputs give the same image id. */
const CREATED = '2026-01-01T00:00:00Z';

export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10.1';

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Shared libraries (and the loader) a binary needs, as ldd reports them; none for a static binary. */
async function sharedLibraries(binary: string): Promise<string[]> {
  const out = await sh('ldd', [binary]).catch(() => ''); // "not a dynamic executable" exits 1
  const libs = new Set<string>();
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.add(m[1]);
  }
  return [...libs];
}

async function cacheKey(spec: ImageSpec): Promise<string> {
  const files = await Promise.all(
    spec.files.map(async (f) => {
      const s = await stat(f.from);
      return { ...f, size: s.size, mtime: s.mtimeMs };
    }),
  );
  return createHash('sha256')
    .update(JSON.stringify({ FORMAT, ref: spec.ref, files, entrypoint: spec.entrypoint }))
    .digest('hex')
    .slice(0, 16);
}

/** Builds the image's tarball into `cacheDir` unless it is there already; returns its path. */
export async function ensureImage(spec: ImageSpec, cacheDir: string): Promise<string> {
  await mkdir(cacheDir, { recursive: true });
  const name = spec.ref.replace(/^.*\//, '').replace(/[^A-Za-z0-9._-]/g, '_');
  const tarball = join(cacheDir, `${name}-${await cacheKey(spec)}.tar`);
  if (existsSync(tarball)) return tarball;

  const work = await mkdtemp(join(cacheDir, '.build-'));
  try {
    const rootfs = join(work, 'rootfs');
    const place = async (from: string, to: string) => {
      const dest = join(rootfs, to);
      await mkdir(dirname(dest), { recursive: true });
      // A copy, not a hard link: linking changes the cached binary's ctime, and tar, in another lane building the
      // same image at the same moment on a cold machine, then fails with "file changed as we read it".
      await copyFile(await realpath(from), dest);
    };
    const libraries = new Set<string>();
    for (const f of spec.files) {
      await place(f.from, f.to);
      for (const lib of await sharedLibraries(f.from)) libraries.add(lib);
    }
    for (const lib of libraries) await place(lib, lib); // same path inside: /lib/x86_64-linux-gnu/libc.so.6, /lib64/ld-linux-x86-64.so.2
    await mkdir(join(rootfs, 'tmp'), { recursive: true });
    await chmod(join(rootfs, 'tmp'), 0o1777);
    await mkdir(join(rootfs, 'etc'), { recursive: true });
    await writeFile(
      join(rootfs, 'etc/passwd'),
      'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n',
    );
    await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');

    const layer = join(work, 'layer.tar');
    await sh('tar', ['--numeric-owner', '--owner=0', '--group=0', '--sort=name', `--mtime=${CREATED}`, '-C', rootfs, '-cf', layer, '.']);
    const diffId = await sha256File(layer);
    const config = JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: CREATED,
      config: { Env: [PATH_ENV], WorkingDir: '/', ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}) },
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
      history: [{ created: CREATED, created_by: `lifeboat sandbox image: ${spec.files.map((f) => basename(f.to)).join(', ')}` }],
    });
    const configId = createHash('sha256').update(config).digest('hex');
    const out = join(work, 'image');
    await mkdir(join(out, diffId), { recursive: true });
    await rename(layer, join(out, diffId, 'layer.tar'));
    await writeFile(join(out, `${configId}.json`), config);
    await writeFile(
      join(out, 'manifest.json'),
      JSON.stringify([{ Config: `${configId}.json`, RepoTags: [spec.ref], Layers: [`${diffId}/layer.tar`] }]),
    );
    await sh('tar', [
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '-C',
      out,
      '-cf',
      join(work, 'image.tar'),
      'manifest.json',
      `${configId}.json`,
      `${diffId}/layer.tar`,
    ]);
    await rename(join(work, 'image.tar'), tarball); // atomic: a concurrent build of the same image only wins the race
    return tarball;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The binaries of an image, each in /usr/local/bin (where the upstream images have them). */
export function binariesImage(ref: string, binaries: string[]): ImageSpec {
  return { ref, files: binaries.map((b) => ({ from: b, to: `/usr/local/bin/${basename(b)}` })) };
}

export function pauseImage(pauseBinary: string): ImageSpec {
  return { ref: PAUSE_IMAGE, files: [{ from: pauseBinary, to: '/pause' }], entrypoint: ['/pause'] };
}
