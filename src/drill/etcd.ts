import { revisionFromJson, type Revision } from '../etcd/revision';
import { minorOf } from '../etcd/static-pod';
import type { DrillHost } from './host';

/** The drill host's etcd tools for one etcd minor version (a folder from `drill.etcd`). */
export interface DrillEtcdTools {
  minor: string;
  etcd: string;
  /** etcdutl (3.5+) or etcdctl (3.4) restores; etcdctl reads keys. */
  restore: { command: string; kind: 'etcdutl' | 'etcdctl' };
  etcdctl: string;
}

/** The tool paths of a drill host, and the config field they come from (for messages). */
export interface DrillToolPaths {
  etcd: Record<string, string>;
  kubeApiserver: Record<string, string>;
  /** "drill" (the worker's, or the drill node's by default) or "drill.node". */
  field: string;
}

/** The tools for a backup's etcd version on the drill host, or why there are none (a drill of that backup cannot run there). */
export async function etcdToolsFor(
  host: DrillHost,
  paths: DrillToolPaths,
  etcdVersion: string | undefined,
): Promise<DrillEtcdTools | string> {
  const minor = minorOf(etcdVersion);
  if (!minor) return `the backup does not record its etcd version, so no etcd tools can be chosen for it`;
  const dir = paths.etcd[minor];
  if (!dir)
    return `no etcd ${minor} tools configured for drills: set ${paths.field}.etcd."${minor}" to a folder on ${host.where} holding etcd and etcdutl (etcdctl for 3.4) of that version`;
  const etcd = `${dir}/etcd`;
  const etcdutl = `${dir}/etcdutl`;
  const etcdctl = `${dir}/etcdctl`;
  if (!(await host.present(etcd))) return `${paths.field}.etcd."${minor}": ${etcd} does not exist on ${host.where}`;
  if (!(await host.present(etcdctl))) return `${paths.field}.etcd."${minor}": ${etcdctl} does not exist on ${host.where}`;
  const restore = (await host.present(etcdutl))
    ? { command: etcdutl, kind: 'etcdutl' as const }
    : { command: etcdctl, kind: 'etcdctl' as const };
  return { minor, etcd, restore, etcdctl };
}

export interface ThrowawayEtcd {
  pid: number;
  /** As the drill host reaches it (loopback there). */
  clientUrl: string;
}

const ETCDCTL_ENV = { ETCDCTL_API: '3' };

/** `snapshot restore` into <scratch>/etcd-data as a one-member cluster on loopback, then etcd from it, ready. */
export async function restoreAndStartEtcd(
  host: DrillHost,
  tools: DrillEtcdTools,
  scratch: string,
  snapshotFile: string,
  timeoutMs: number,
): Promise<ThrowawayEtcd> {
  const [clientPort, peerPort] = [await host.freePort(), await host.freePort()];
  const peer = `http://127.0.0.1:${peerPort}`;
  const client = `http://127.0.0.1:${clientPort}`;
  const dataDir = `${scratch}/etcd-data`;
  const member = ['--name', 'drill', '--initial-cluster', `drill=${peer}`, '--initial-advertise-peer-urls', peer];
  const restored = await host.run(
    [tools.restore.command, 'snapshot', 'restore', snapshotFile, '--data-dir', dataDir, ...member],
    ETCDCTL_ENV,
  );
  if (restored.code !== 0)
    throw new DrillProblem(
      `${tools.restore.kind} snapshot restore failed: ${(restored.stderr || restored.stdout).trim().split('\n').slice(-2).join(' ')}`,
    );
  const fast = tools.minor !== '3.4' ? ['--unsafe-no-fsync'] : [];
  const pid = await host.start(scratch, 'etcd', tools.etcd, [
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
  const health = `http://${await host.reach(clientPort)}/health`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const healthy = await fetch(health, { signal: AbortSignal.timeout(2_000) })
      .then(async (r) => r.ok && ((await r.json()) as { health?: string }).health === 'true')
      .catch(() => false);
    if (healthy) return { pid, clientUrl: client };
    if (Date.now() > deadline)
      throw new DrillProblem(
        `the restored etcd did not become healthy within ${Math.round(timeoutMs / 1000)} s (see ${scratch}/etcd.log on ${host.where})`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Keys per /registry/<resource>/ at a revision, counted from etcdctl's streamed key listing on the drill host (only names held). */
export async function countKeys(
  host: DrillHost,
  tools: DrillEtcdTools,
  clientUrl: string,
  revision: Revision,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const r = await host.lines(
    [tools.etcdctl, `--endpoints=${clientUrl}`, 'get', '/registry/', '--prefix', '--keys-only', `--rev=${revision}`],
    ETCDCTL_ENV,
    (line) => {
      const parts = line.split('/');
      if (parts.length >= 3 && parts[1] === 'registry' && parts[2]) counts[parts[2]] = (counts[parts[2]] ?? 0) + 1;
    },
  );
  if (r.code !== 0) throw new DrillProblem(`counting keys in the restored etcd failed: ${r.stderr.trim().split('\n').pop()}`);
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * The restored etcd's current revision (`etcdctl endpoint status`). A restore without --bump-revision keeps the
 * snapshot's own, so it must be the manifest's: otherwise the file is another snapshot than the one the manifest
 * describes (an older backup's numbers can match a newer snapshot's data at that older revision).
 */
export async function restoredRevision(host: DrillHost, tools: DrillEtcdTools, clientUrl: string): Promise<Revision> {
  const r = await host.run([tools.etcdctl, `--endpoints=${clientUrl}`, 'endpoint', 'status', '-w', 'json'], ETCDCTL_ENV);
  let revision: unknown;
  try {
    if (r.code === 0) revision = revisionFromJson(r.stdout);
  } catch {
    // not JSON: said below
  }
  if (typeof revision !== 'string')
    throw new DrillProblem(`the restored etcd's revision cannot be read: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
  return revision;
}

/** A finding about the backup (not a fault of the drill host): the drill fails with it, retrying cannot help. */
export class DrillProblem extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DrillProblem';
  }
}
