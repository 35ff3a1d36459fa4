import { revisionBelow, revisionFromJson, type Revision } from '../../src/etcd/revision';
import { ApplicationFailure } from '@temporalio/common';
import { parse } from 'yaml';
import type { EtcdSnapshotInfo, FileSnapshotInfo } from '../../src/backup/manifest';
import { command } from '../../src/ssh/quote';
import type { ActivityDeps } from '../deps';
import { cancellationSignal } from '../heartbeat';
import { parseCounts, registryCountCommand } from '../../src/etcd/commands';
import { withSnapshotHost, type SnapshotHost, type SnapshotSource } from '../../src/backup/snapshot-host';

export interface InspectSnapshotInput {
  cluster: string;
  node: string;
  path: string;
  /** Where the file is (absent in histories from before direct mode: the node). */
  source?: SnapshotSource;
  /** The file's status, when the snapshot step already read it; read here otherwise. */
  status?: SnapshotFileStatus;
}

export type SnapshotFileStatus = Omit<FileSnapshotInfo, 'serverVersion'> & { tool: 'etcdutl' | 'etcdctl' };

export interface SnapshotInspection {
  etcd: EtcdSnapshotInfo;
  /** Only in histories from before the archive step read it (ControlPlaneArchive.kubernetesVersion). */
  kubernetesVersion?: string;
  resourceCounts: Record<string, number>;
  /** Which tool read the snapshot: etcdutl (3.5+) or etcdctl (3.4). */
  statusTool: 'etcdutl' | 'etcdctl';
}

/** Parses `snapshot status -w json` of etcdctl 3.4 / etcdutl 3.5+ ({"hash","revision","totalKey","totalSize"[,"version"]}). */
export function parseSnapshotStatus(stdout: string): Omit<FileSnapshotInfo, 'serverVersion'> {
  const s = JSON.parse(stdout) as { hash: number; revision: unknown; totalKey: number; totalSize: number; version?: string };
  // The revision from the text itself: JSON.parse rounds a number past 2^53.
  const revision = revisionFromJson(stdout);
  if (revision === undefined || typeof s.totalKey !== 'number')
    throw new Error(`unexpected snapshot status output: ${stdout.slice(0, 200)}`);
  return { hash: s.hash, revision, totalKeys: s.totalKey, totalSize: s.totalSize, storageVersion: s.version || undefined };
}

/**
 * Checks the snapshot with etcd's own reader (refusing an empty or unreadable one) and records what a restore will
 * later be checked against: revision, key count, etcd hash, server version (the Kubernetes version is the archive
 * step's), and the number of keys per resource as they were at exactly the snapshot's revision.
 */
export function inspectSnapshot(deps: ActivityDeps) {
  return (input: InspectSnapshotInput): Promise<SnapshotInspection> =>
    withSnapshotHost(deps.config, input.cluster, input.node, input.source ?? 'node', (host) => inspectOn(host, input), {
      signal: cancellationSignal(),
    });
}

/** The inspection on the host the snapshot is on. */
export async function inspectOn(host: SnapshotHost, input: Pick<InspectSnapshotInput, 'path' | 'status'>): Promise<SnapshotInspection> {
  const run = (argv: string[], allowFailure = false) => host.run(argv, { allowFailure });
  const status = input.status ?? (await checkSnapshotFile(host, input.path));
  const { tool, ...info } = status;
  const countAt = (rev?: Revision) => run(registryCountCommand(host.etcdctl, rev), true);
  // Both reads at once, awaited together: awaited one after the other, a lost connection failed the first and left
  // the second's failure unhandled, which ends the worker's process (seen when the demo tore its node down).
  const [endpoint, counted] = await Promise.all([
    run(host.etcdctl('endpoint', 'status', '-w', 'json'), true),
    // At the snapshot's revision while etcd still has it (the API server compacts every few minutes), else now.
    countAt(info.revision).then((r) => (r.code === 0 ? r : countAt())),
  ]);
  const serverVersion =
    endpoint.code === 0 ? (JSON.parse(endpoint.stdout) as { Status?: { version?: string } }[])[0]?.Status?.version : undefined;
  const resourceCounts = counted.code === 0 ? parseCounts(counted.stdout) : {};
  return { etcd: { ...info, serverVersion }, resourceCounts, statusTool: tool };
}

/** The Kubernetes version a kube-apiserver static-pod manifest runs: its image's tag (undefined if it has none). */
export function kubernetesVersionOf(manifestYaml: string): string | undefined {
  try {
    const image = (parse(manifestYaml) as { spec?: { containers?: { image?: string }[] } })?.spec?.containers?.[0]?.image;
    return image?.split(':').pop();
  } catch {
    return undefined;
  }
}

/**
 * etcd's own reader on the file (etcdutl 3.5+, etcdctl 3.4): revision, keys, size and hash. An unreadable or empty
 * snapshot is refused here, before anything is uploaded.
 */
export async function checkSnapshotFile(host: SnapshotHost, path: string): Promise<SnapshotFileStatus> {
  const hasEtcdutl = (await host.run(['sh', '-c', `command -v ${command([host.etcdutl])}`], { allowFailure: true })).code === 0;
  const statusArgv = hasEtcdutl
    ? [host.etcdutl, 'snapshot', 'status', '-w', 'json', path]
    : [host.etcdctl()[0], 'snapshot', 'status', '-w', 'json', path];
  const status = await host.run(statusArgv, { allowFailure: true });
  if (status.code !== 0) {
    throw ApplicationFailure.nonRetryable(
      `the snapshot ${path} on ${host.label} is unreadable: ${status.stderr.trim().split('\n').pop()}`,
      'UnreadableSnapshot',
    );
  }
  const info = parseSnapshotStatus(status.stdout);
  if (info.totalKeys === 0 || !revisionBelow(1, info.revision)) {
    throw ApplicationFailure.nonRetryable(
      `the snapshot on ${host.label} is empty (${info.totalKeys} keys, revision ${info.revision}); refusing to store it as a backup`,
      'EmptySnapshot',
    );
  }
  return { ...info, tool: hasEtcdutl ? 'etcdutl' : 'etcdctl' };
}
