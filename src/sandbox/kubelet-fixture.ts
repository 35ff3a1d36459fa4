/**
 * TEST FIXTURE — stands in for the kubelet's static-pod handling on a sandbox node, because a real kubelet cannot run
 * here (no container runtime, no images). Product code never talks to this: it only moves manifest files in and out
 * of the manifests folder, exactly as it does on a real node, and this fixture reacts the way the kubelet would:
 *
 * - every manifest file in the folder is a pod; its containers' command+args run with the image's binaries on PATH;
 * - hostPath volumes are bind-mounted onto their mountPath in a private mount namespace, like a container's;
 * - a file that changes restarts its pod, a file that goes stops it (SIGTERM, then SIGKILL after the grace period);
 * - a container that exits is restarted with back-off (restartPolicy: Always).
 *
 * Run inside the node's network and mount namespaces: `node kubelet-fixture.js <config.json>`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { openSync, closeSync, readFileSync, readdirSync, writeFileSync, renameSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

interface FixtureConfig {
  manifestsDir: string;
  /** Host folder for container logs and status.json. */
  stateDir: string;
  /** Image name without tag -> folder holding that image's binaries. */
  images: Record<string, string>;
  pollMs?: number;
  graceMs?: number;
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodManifest {
  metadata?: { name?: string };
  spec?: { containers?: Container[]; volumes?: { name: string; hostPath?: { path: string } }[] };
}

interface RunningContainer {
  name: string;
  child?: ChildProcess;
  restarts: number;
  startedAt?: string;
  timer?: NodeJS.Timeout;
}
interface Pod {
  file: string;
  hash: string;
  name: string;
  containers: RunningContainer[];
  stopping: boolean;
}

const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as FixtureConfig;
const pods = new Map<string, Pod>();
mkdirSync(config.stateDir, { recursive: true });

// Binds hostPath onto mountPath in a fresh mount namespace, then execs the container command.
const BIND_AND_EXEC = 'while [ "$1" != "--" ]; do mkdir -p "$2"; mount --bind "$1" "$2"; shift 2; done; shift; exec "$@"';

function imageDir(image: string): string {
  const withoutTag = image.replace(/@sha256:.*$/, '').replace(/:[^/:]+$/, '');
  const dir = config.images[withoutTag];
  if (!dir) throw new Error(`no binaries for image ${image} (known: ${Object.keys(config.images).join(', ')})`);
  return dir;
}

function startContainer(pod: Pod, spec: Container, volumes: Map<string, string>, rc: RunningContainer): void {
  if (pod.stopping) return;
  const argv = [...(spec.command ?? []), ...(spec.args ?? [])];
  const binds: string[] = [];
  for (const m of spec.volumeMounts ?? []) {
    const hostPath = volumes.get(m.name);
    if (hostPath && hostPath !== m.mountPath) binds.push(hostPath, m.mountPath);
  }
  const env: NodeJS.ProcessEnv = { PATH: `${imageDir(spec.image)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` };
  for (const e of spec.env ?? []) env[e.name] = e.value ?? '';
  const log = openSync(join(config.stateDir, `${pod.name}_${spec.name}.log`), 'a');
  const [file, args] = binds.length
    ? ['unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', BIND_AND_EXEC, 'sh', ...binds, '--', ...argv]]
    : [argv[0]!, argv.slice(1)];
  const child = spawn(file, args as string[], { env, stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  rc.child = child;
  rc.startedAt = new Date().toISOString();
  writeStatus();
  child.once('exit', () => {
    rc.child = undefined;
    writeStatus();
    if (pod.stopping) return;
    rc.restarts += 1;
    const backoffMs = Math.min(10_000, 500 * 2 ** Math.min(rc.restarts, 5));
    rc.timer = setTimeout(() => startContainer(pod, spec, volumes, rc), backoffMs);
  });
  child.once('error', () => undefined);
}

function startPod(file: string, text: string, hash: string): void {
  let manifest: PodManifest;
  try {
    manifest = parse(text) as PodManifest;
    // An empty file (caught mid-write) parses as null: no pod yet, as with a real kubelet. The finished write
    // changes the hash, and the next sync starts the pod.
    if (manifest === null || typeof manifest !== 'object') throw new Error('not a pod manifest (empty, or still being written)');
  } catch (err) {
    console.error(`kubelet-fixture: ${file}: not valid YAML: ${(err as Error).message}`);
    pods.set(file, { file, hash, name: file, containers: [], stopping: false });
    return;
  }
  const name = manifest.metadata?.name ?? file;
  const volumes = new Map((manifest.spec?.volumes ?? []).filter((v) => v.hostPath).map((v) => [v.name, v.hostPath!.path] as const));
  const pod: Pod = { file, hash, name, containers: [], stopping: false };
  pods.set(file, pod);
  for (const spec of manifest.spec?.containers ?? []) {
    const rc: RunningContainer = { name: spec.name, restarts: 0 };
    pod.containers.push(rc);
    try {
      startContainer(pod, spec, volumes, rc);
    } catch (err) {
      console.error(`kubelet-fixture: pod ${name}: ${(err as Error).message}`);
    }
  }
  console.log(`kubelet-fixture: started pod ${name} from ${file}`);
}

async function stopPod(pod: Pod): Promise<void> {
  pod.stopping = true;
  await Promise.all(
    pod.containers.map(async (rc) => {
      clearTimeout(rc.timer);
      const child = rc.child;
      if (!child || child.pid === undefined) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const kill = (signal: NodeJS.Signals) => {
        try {
          process.kill(-child.pid!, signal);
        } catch {
          // gone
        }
      };
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), config.graceMs ?? 10_000);
      await exited;
      clearTimeout(timer);
    }),
  );
  console.log(`kubelet-fixture: stopped pod ${pod.name}`);
}

function writeStatus(): void {
  const status = [...pods.values()].map((p) => ({
    file: p.file,
    name: p.name,
    stopping: p.stopping,
    containers: p.containers.map((c) => ({ name: c.name, running: c.child !== undefined, pid: c.child?.pid, restarts: c.restarts, startedAt: c.startedAt })),
  }));
  const path = join(config.stateDir, 'status.json');
  writeFileSync(`${path}.tmp`, JSON.stringify(status, null, 2));
  renameSync(`${path}.tmp`, path);
}

let syncing = false;
async function sync(): Promise<void> {
  if (syncing) return;
  syncing = true;
  try {
    let files: string[] = [];
    try {
      // The kubelet ignores dotfiles in the static-pod folder; so does this fixture.
      files = readdirSync(config.manifestsDir).filter((f) => !f.startsWith('.') && /\.(ya?ml|json)$/.test(f));
    } catch {
      files = [];
    }
    const seen = new Set<string>();
    for (const f of files) {
      let text: string;
      try {
        text = readFileSync(join(config.manifestsDir, f), 'utf8');
      } catch {
        continue;
      }
      seen.add(f);
      const hash = createHash('sha256').update(text).digest('hex');
      const pod = pods.get(f);
      if (pod && pod.hash === hash) continue;
      if (pod) {
        await stopPod(pod);
        pods.delete(f);
      }
      startPod(f, text, hash);
    }
    for (const [f, pod] of pods) {
      if (!seen.has(f)) {
        await stopPod(pod);
        pods.delete(f);
      }
    }
    writeStatus();
  } finally {
    syncing = false;
  }
}

const interval = setInterval(() => void sync(), config.pollMs ?? 300);
void sync();

async function shutdown(): Promise<void> {
  clearInterval(interval);
  await Promise.all([...pods.values()].map(stopPod));
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
