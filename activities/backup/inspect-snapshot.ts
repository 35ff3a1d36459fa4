import { ApplicationFailure } from '@temporalio/common';
import { parse } from 'yaml';
import type { EtcdSnapshotInfo } from '../../src/backup/manifest';
import { command } from '../../src/ssh/quote';
import { runOnNode } from '../../src/ssh/run';
import type { ActivityDeps } from '../deps';
import { classified } from '../errors';
import { etcdctl, parseCounts, registryCountCommand } from '../etcd-commands';
import { withNode } from '../node-session';

export interface InspectSnapshotInput {
  cluster: string;
  node: string;
  path: string;
}

export interface SnapshotInspection {
  etcd: EtcdSnapshotInfo;
  kubernetesVersion?: string;
  resourceCounts: Record<string, number>;
  /** Which tool read the snapshot: etcdutl (3.5+) or etcdctl (3.4). */
  statusTool: 'etcdutl' | 'etcdctl';
}

/** Parses `snapshot status -w json` of etcdctl 3.4 / etcdutl 3.5+ ({"hash","revision","totalKey","totalSize"[,"version"]}). */
export function parseSnapshotStatus(stdout: string): Omit<EtcdSnapshotInfo, 'serverVersion'> {
  const s = JSON.parse(stdout) as { hash: number; revision: number; totalKey: number; totalSize: number; version?: string };
  if (typeof s.revision !== 'number' || typeof s.totalKey !== 'number') throw new Error(`unexpected snapshot status output: ${stdout.slice(0, 200)}`);
  return { hash: s.hash, revision: s.revision, totalKeys: s.totalKey, totalSize: s.totalSize, storageVersion: s.version || undefined };
}

/**
 * Checks the snapshot with etcd's own reader (refusing an empty or unreadable one) and records what a restore will
 * later be checked against: revision, key count, etcd hash, server and Kubernetes versions, and the number of keys
 * per resource as they were at exactly the snapshot's revision.
 */
export function inspectSnapshot(deps: ActivityDeps) {
  return (input: InspectSnapshotInput): Promise<SnapshotInspection> =>
    classified(() =>
      withNode(deps, input.cluster, input.node, async ({ cluster, node, ssh }) => {
        const run = (argv: string[], allowFailure = false) => runOnNode(ssh, node.name, argv, { allowFailure });
        const hasEtcdutl = (await run(['sh', '-c', `command -v ${command([cluster.etcd.etcdutl])}`], true)).code === 0;
        const statusArgv = hasEtcdutl ? [cluster.etcd.etcdutl, 'snapshot', 'status', '-w', 'json', input.path] : [cluster.etcd.etcdctl, 'snapshot', 'status', '-w', 'json', input.path];
        const status = await run(statusArgv, true);
        if (status.code !== 0) {
          throw ApplicationFailure.nonRetryable(
            `cluster "${cluster.name}", step verify: the snapshot ${input.path} on node "${node.name}" is unreadable: ${status.stderr.trim().split('\n').pop()}`,
            'UnreadableSnapshot',
          );
        }
        const info = parseSnapshotStatus(status.stdout);
        if (info.totalKeys === 0 || info.revision <= 1) {
          throw ApplicationFailure.nonRetryable(`cluster "${cluster.name}", step verify: the snapshot on node "${node.name}" is empty (${info.totalKeys} keys, revision ${info.revision}); refusing to store it as a backup`, 'EmptySnapshot');
        }
        const endpoint = await run(etcdctl(cluster, 'endpoint', 'status', '-w', 'json'), true);
        const serverVersion = endpoint.code === 0 ? (JSON.parse(endpoint.stdout) as { Status?: { version?: string } }[])[0]?.Status?.version : undefined;

        const countAt = (rev?: number) => run(registryCountCommand(cluster, rev), true);
        // At the snapshot's revision while etcd still has it (the API server compacts every few minutes), else now.
        let counted = await countAt(info.revision);
        if (counted.code !== 0) counted = await countAt();
        const resourceCounts = counted.code === 0 ? parseCounts(counted.stdout) : {};

        const manifest = await run(['cat', `${cluster.paths.manifestsDir}/kube-apiserver.yaml`], true);
        let kubernetesVersion: string | undefined;
        if (manifest.code === 0) {
          const image = (parse(manifest.stdout) as { spec?: { containers?: { image?: string }[] } })?.spec?.containers?.[0]?.image;
          kubernetesVersion = image?.split(':').pop();
        }
        return { etcd: { ...info, serverVersion }, kubernetesVersion, resourceCounts, statusTool: hasEtcdutl ? 'etcdutl' : 'etcdctl' };
      }),
    );
}
