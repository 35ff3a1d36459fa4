import { ApplicationFailure } from '@temporalio/common';
import { runOnNode } from '../../src/ssh/run';
import type { ActivityDeps } from '../deps';
import { classified } from '../errors';
import { etcdctl } from '../etcd-commands';
import { checkRunKey, withNode } from '../node-session';

export interface TakeSnapshotInput {
  cluster: string;
  /** Names this run's folder on the node: a retried attempt finds and reuses its own snapshot. */
  runKey: string;
}

export interface SnapshotFile {
  node: string;
  runDir: string;
  path: string;
  takenAt: string;
  sizeBytes: number;
}

/**
 * `etcdctl snapshot save` on the control-plane node, into a run-specific folder under the work dir. etcdctl writes
 * `<file>.part` and renames it only when the snapshot is complete, so an existing file is a whole snapshot from an
 * earlier attempt of this same run and is reused rather than taken twice.
 */
export function takeSnapshot(deps: ActivityDeps) {
  return (input: TakeSnapshotInput): Promise<SnapshotFile> =>
    classified(() =>
      withNode(deps, input.cluster, undefined, async ({ cluster, node, ssh }) => {
        const runDir = `${cluster.paths.workDir}/backups/${checkRunKey(input.runKey)}`;
        const path = `${runDir}/snapshot.db`;
        const run = (argv: string[], allowFailure = false) => runOnNode(ssh, node.name, argv, { allowFailure });
        await run(['mkdir', '-p', '-m', '0700', runDir]);
        const existing = await run(['test', '-s', path], true);
        if (existing.code !== 0) {
          const saved = await run(etcdctl(cluster, '--command-timeout=600s', 'snapshot', 'save', path), true);
          if (saved.code !== 0) {
            const why = (saved.stderr || saved.stdout).trim().split('\n').slice(-3).join(' | ');
            const hint = /certificate|x509|tls/i.test(why)
              ? ' Check etcd.caFile/certFile/keyFile in the config.'
              : /connection refused|deadline|unavailable/i.test(why)
                ? ` Is etcd running on node "${node.name}" at ${cluster.etcd.endpoint}?`
                : /not found|No such file/i.test(why)
                  ? ` Is ${cluster.etcd.etcdctl} installed on node "${node.name}" (etcd.etcdctl in the config)?`
                  : '';
            // Bad certificates and a missing etcdctl will not fix themselves; an etcd that is down may come back.
            const permanent = /certificate|x509|not found|No such file/i.test(why);
            const message = `cluster "${cluster.name}", step snapshot: etcdctl snapshot save failed on node "${node.name}": ${why}.${hint}`;
            throw permanent ? ApplicationFailure.nonRetryable(message, 'SnapshotFailed') : ApplicationFailure.retryable(message, 'SnapshotFailed');
          }
        }
        const stat = await run(['stat', '-c', '%s %Y', path]);
        const [size, mtime] = stat.stdout.trim().split(' ').map(Number);
        return {
          node: node.name,
          runDir,
          path,
          takenAt: new Date(mtime! * 1000).toISOString(),
          sizeBytes: size!,
        };
      }),
    );
}
