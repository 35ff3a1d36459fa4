import { execFile, spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import type { DrillConfig } from '../config/schema';
import { minorOf } from '../etcd/static-pod';
import { freePort, startThrowaway } from './processes';

/** The drill host's etcd tools for one etcd minor version (a folder from `drill.etcd`). */
export interface DrillEtcdTools {
  minor: string;
  etcd: string;
  /** etcdutl (3.5+) or etcdctl (3.4) restores; etcdctl reads keys. */
  restore: { command: string; kind: 'etcdutl' | 'etcdctl' };
  etcdctl: string;
}

const present = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** The tools for a backup's etcd version, or why there are none (a drill of that backup cannot run here). */
export async function etcdToolsFor(drill: DrillConfig, etcdVersion: string | undefined): Promise<DrillEtcdTools | string> {
  const minor = minorOf(etcdVersion);
  if (!minor) return `the backup does not record its etcd version, so no etcd tools can be chosen for it`;
  const dir = drill.etcd[minor];
  if (!dir)
    return `no etcd ${minor} tools configured for drills: set drill.etcd."${minor}" to a folder on the worker holding etcd and etcdutl (etcdctl for 3.4) of that version`;
  const etcd = `${dir}/etcd`;
  const etcdutl = `${dir}/etcdutl`;
  const etcdctl = `${dir}/etcdctl`;
  if (!(await present(etcd))) return `drill.etcd."${minor}": ${etcd} does not exist on the worker`;
  if (!(await present(etcdctl))) return `drill.etcd."${minor}": ${etcdctl} does not exist on the worker`;
  const restore = (await present(etcdutl))
    ? { command: etcdutl, kind: 'etcdutl' as const }
    : { command: etcdctl, kind: 'etcdctl' as const };
  return { minor, etcd, restore, etcdctl };
}

export interface ThrowawayEtcd {
  pid: number;
  clientUrl: string;
}

const run = promisify(execFile);

/** `snapshot restore` into <scratch>/etcd-data as a one-member cluster on loopback, then etcd from it, ready. */
export async function restoreAndStartEtcd(
  tools: DrillEtcdTools,
  scratch: string,
  snapshotFile: string,
  timeoutMs: number,
): Promise<ThrowawayEtcd> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const peer = `http://127.0.0.1:${peerPort}`;
  const client = `http://127.0.0.1:${clientPort}`;
  const dataDir = `${scratch}/etcd-data`;
  const member = ['--name', 'drill', '--initial-cluster', `drill=${peer}`, '--initial-advertise-peer-urls', peer];
  try {
    await run(tools.restore.command, ['snapshot', 'restore', snapshotFile, '--data-dir', dataDir, ...member], {
      env: { ...process.env, ETCDCTL_API: '3' },
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new DrillProblem(
      `${tools.restore.kind} snapshot restore failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-2).join(' ')}`,
    );
  }
  const fast = tools.minor !== '3.4' ? ['--unsafe-no-fsync'] : [];
  const pid = await startThrowaway(scratch, 'etcd', tools.etcd, [
    '--data-dir',
    dataDir,
    ...member,
    '--listen-client-urls',
    client,
    '--advertise-client-urls',
    client,
    '--listen-peer-urls',
    peer,
    ...fast,
  ]);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const healthy = await fetch(`${client}/health`, { signal: AbortSignal.timeout(2_000) })
      .then(async (r) => r.ok && ((await r.json()) as { health?: string }).health === 'true')
      .catch(() => false);
    if (healthy) return { pid, clientUrl: client };
    if (Date.now() > deadline)
      throw new DrillProblem(`the restored etcd did not become healthy within ${Math.round(timeoutMs / 1000)} s (see ${scratch}/etcd.log)`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Keys per /registry/<resource>/ at a revision, counted from etcdctl's streamed key listing (only names held). */
export function countKeys(tools: DrillEtcdTools, clientUrl: string, revision: number): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(tools.etcdctl, [`--endpoints=${clientUrl}`, 'get', '/registry/', '--prefix', '--keys-only', `--rev=${revision}`], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const counts: Record<string, number> = {};
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const parts = line.split('/');
      if (parts.length >= 3 && parts[1] === 'registry' && parts[2]) counts[parts[2]] = (counts[parts[2]] ?? 0) + 1;
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) reject(new DrillProblem(`counting keys in the restored etcd failed: ${stderr.trim().split('\n').pop()}`));
      else resolve(Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b))));
    });
  });
}

/** A finding about the backup (not a fault of the drill host): the drill fails with it, retrying cannot help. */
export class DrillProblem extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DrillProblem';
  }
}
