import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, parseDocument } from 'yaml';

/**
 * The compose file and Dockerfile, checked statically here in seconds: `docker-compose config -q` (Debian's
 * docker-compose 1.29, installed by scripts/servers.sh) validates the file against the Compose schema and interpolates
 * every variable, and the image references are checked for pins. The stack itself is brought up on a real Docker
 * engine by `npm run compose:up` (test/compose, docs/compose.md), which needs Docker and is not part of `npm test`.
 */

const repoRoot = resolve(__dirname, '..', '..');
const composeFile = join(repoRoot, 'docker-compose.yml');
const DOCKER_COMPOSE = process.env.LIFEBOAT_DOCKER_COMPOSE_BIN ?? '/usr/bin/docker-compose';

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Environment for docker-compose: no ambient COMPOSE_* overrides, and HOME set (the file interpolates ${HOME}). */
function composeEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: process.env.HOME || homedir() };
  for (const key of Object.keys(env)) if (key.startsWith('COMPOSE_')) delete env[key];
  return env;
}

function dockerCompose(args: string[], cwd: string): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(DOCKER_COMPOSE, args, { cwd, env: composeEnv(), timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        // Not an exit status: the binary is missing, or it was killed by the timeout.
        reject(
          new Error(
            `cannot run ${DOCKER_COMPOSE} ${args.join(' ')}: ${err.message} (install it with \`apt-get install -y docker-compose\` or scripts/servers.sh)`,
          ),
        );
        return;
      }
      resolvePromise({ code: err ? (err.code as number) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Writes a mutated copy of docker-compose.yml into `dir` (comments kept) and validates it there. */
async function validateMutatedCopy(dir: string, mutate: (doc: ReturnType<typeof parseDocument>) => void): Promise<RunResult> {
  const doc = parseDocument(await readFile(composeFile, 'utf8'));
  mutate(doc);
  await writeFile(join(dir, 'docker-compose.yml'), doc.toString());
  return dockerCompose(['config', '-q'], dir);
}

/** Splits an image reference into its tag and digest (either may be absent). */
function imageTagAndDigest(image: string): { tag?: string; digest?: string } {
  const [nameAndTag, digest] = image.split('@', 2);
  const lastSlash = nameAndTag.lastIndexOf('/');
  const colon = nameAndTag.lastIndexOf(':');
  const tag = colon > lastSlash ? nameAndTag.slice(colon + 1) : undefined;
  return { tag, digest };
}

describe('docker-compose.yml', () => {
  let scratch: string;

  beforeAll(async () => {
    if (!existsSync(DOCKER_COMPOSE)) {
      throw new Error(
        `${DOCKER_COMPOSE} not found: install Debian's docker-compose (apt-get install -y docker-compose, done by scripts/servers.sh)`,
      );
    }
    scratch = await mkdtemp(join(tmpdir(), 'lifeboat-compose-'));
  });

  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  test('is accepted by `docker-compose config -q` without warnings', async () => {
    const result = await dockerCompose(['config', '-q'], repoRoot);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  test('the validation can fail: an unchanged copy passes, broken copies are rejected', async () => {
    // Control: the copy itself (same content, another directory) validates, so a failure below is the mutation's.
    const control = await validateMutatedCopy(scratch, () => undefined);
    expect(control.stderr).toBe('');
    expect(control.code).toBe(0);

    const wrongType = await validateMutatedCopy(scratch, (doc) => doc.setIn(['services', 'temporal', 'ports'], 7233));
    expect(wrongType.code).not.toBe(0);
    expect(wrongType.stderr).toMatch(/services\.temporal\.ports/);

    const unknownKey = await validateMutatedCopy(scratch, (doc) => doc.setIn(['services', 'worker', 'restart_policy'], 'always'));
    expect(unknownKey.code).not.toBe(0);
    expect(unknownKey.stderr).toMatch(/restart_policy/);
  });

  test('with docker-compose.local.yml (images built on the machine) it is accepted too, and only images, build arguments and a health check change', async () => {
    const result = await dockerCompose(['-f', 'docker-compose.yml', '-f', 'docker-compose.local.yml', 'config'], repoRoot);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const merged = parse(result.stdout) as {
      services: Record<string, { image?: string; build?: { args?: Record<string, string> }; healthcheck?: { test: string[] } }>;
    };
    for (const service of ['postgresql', 'temporal', 'temporal-ui', 'minio', 'worker'])
      expect({ service, image: merged.services[service].image }).toEqual({ service, image: `lifeboat-local/${service}:local` });
    expect(merged.services.worker.build?.args).toEqual({
      NODE_IMAGE: 'lifeboat-local/node:local',
      ETCD_IMAGE: 'lifeboat-local/etcd:local',
    });
    expect(merged.services.minio.healthcheck?.test).toContain('curl');
    // Everything else is the published file's: the override names no ports, volumes, environment or commands.
    const override = parse(await readFile(join(repoRoot, 'docker-compose.local.yml'), 'utf8')) as { services: Record<string, object> };
    for (const [service, s] of Object.entries(override.services))
      expect({ service, keys: Object.keys(s).filter((k) => !['image', 'build', 'healthcheck'].includes(k)) }).toEqual({
        service,
        keys: [],
      });
  });

  test('has the expected services, and every image is pinned to a tag other than latest', async () => {
    const compose = parse(await readFile(composeFile, 'utf8')) as { services: Record<string, { image?: string; build?: unknown }> };
    expect(Object.keys(compose.services).sort()).toEqual(['minio', 'postgresql', 'temporal', 'temporal-ui', 'worker']);
    expect(compose.services.worker.build).toBe('.');

    const images = Object.entries(compose.services).filter(([, s]) => s.image !== undefined);
    expect(images.length).toBe(4);
    for (const [service, { image }] of images) {
      const { tag, digest } = imageTagAndDigest(image as string);
      expect({ service, image, pinned: tag !== undefined || digest !== undefined }).toEqual({ service, image, pinned: true });
      expect({ service, image, latest: tag === 'latest' }).toEqual({ service, image, latest: false });
      // Interpolated tags (${VERSION}) would make the pin depend on the caller's environment.
      expect({ service, image, interpolated: image!.includes('$') }).toEqual({ service, image, interpolated: false });
    }
  });
});

describe('Dockerfile', () => {
  test('builds on pinned Node 24 images (etcd tools from a pinned etcd release), runs as non-root, and starts the CLI the package declares', async () => {
    const dockerfile = await readFile(join(repoRoot, 'Dockerfile'), 'utf8');
    // The base images are build arguments (docker-compose.local.yml passes images built on the machine); their
    // defaults are the published, pinned ones.
    const froms = [...dockerfile.matchAll(/^FROM\s+(\S+)/gim)].map((m) => m[1]);
    expect(froms).toEqual(['${ETCD_IMAGE}', '${NODE_IMAGE}', '${NODE_IMAGE}']);
    const args = Object.fromEntries([...dockerfile.matchAll(/^ARG\s+(\w+)=(\S+)$/gm)].map((m) => [m[1], m[2]]));
    expect(args.ETCD_IMAGE).toMatch(/^gcr\.io\/etcd-development\/etcd:v3\.\d+\.\d+$/);
    expect(args.NODE_IMAGE).toBe('node:24-bookworm-slim');
    // ARGs used by FROM must come before the first FROM, or they are empty there.
    expect(dockerfile.indexOf('ARG NODE_IMAGE=')).toBeLessThan(dockerfile.search(/^FROM /m));
    expect(dockerfile).toMatch(/^COPY --from=etcd \/usr\/local\/bin\/etcdctl \/usr\/local\/bin\/etcdutl \/usr\/local\/bin\/$/m);
    // The etcd gRPC client loads its protos at run time from the checkout's src/ (src/etcd/grpc/proto.ts).
    expect(dockerfile).toMatch(/^COPY --from=build \/app\/src\/etcd\/grpc\/proto \.\/src\/etcd\/grpc\/proto$/m);
    expect(dockerfile).toMatch(/^ENV NODE_OPTIONS="--max-semi-space-size=2 --expose-gc"$/m);
    expect(dockerfile).toMatch(/^ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072$/m);

    const users = [...dockerfile.matchAll(/^USER\s+(\S+)/gim)].map((m) => m[1]);
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).not.toMatch(/^(root|0)(:|$)/);

    const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(dockerfile).toContain(`ENTRYPOINT ["node", "${pkg.bin.lifeboat}"]`);
    expect(dockerfile).toContain('CMD ["worker"]');
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
  });
});
