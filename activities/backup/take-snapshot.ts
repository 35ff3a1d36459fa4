import { ApplicationFailure } from '@temporalio/common';
import { findCluster } from '../../src/config/load';
import type { ActivityDeps } from '../deps';
import { whilePreparing, cancellationSignal } from '../heartbeat';
import { checkRunKey } from '../../src/run-key';
import type { RemoteResult } from '../../src/ssh/run';
import { checkRevisionFloor, type RevisionRegressionAllowed } from './revision-check';
import { checkSnapshotFile, type SnapshotFileStatus } from './inspect-snapshot';
import { withSnapshotHost, snapshotSourceOf, type SnapshotHost, type SnapshotSource } from '../../src/backup/snapshot-host';

export interface TakeSnapshotInput {
  cluster: string;
  /** Names this run's folder on the node: a retried attempt finds and reuses its own snapshot. */
  runKey: string;
  /** A person's go-ahead to store a snapshot whose revision is below the floor (etcd reset on purpose). */
  allowRevisionRegression?: boolean;
}

export interface SnapshotFile {
  node: string;
  /** Where the file is: on the node (taken over SSH) or on the worker (direct mode). */
  source: SnapshotSource;
  runDir: string;
  path: string;
  takenAt: string;
  sizeBytes: number;
  /** etcd's reader on the file: it is whole and not empty, and its revision names the backup. */
  status: SnapshotFileStatus;
  /** The revision floor this snapshot is below, stored anyway because a person allowed it. */
  revisionRegressionAllowed?: RevisionRegressionAllowed;
}

/**
 * `etcdctl snapshot save` on the control-plane node (or on the worker, in direct mode), into a run-specific folder
 * under the work dir, then etcd's reader on the file. etcdctl writes `<file>.part` and renames it only when the
 * snapshot is complete, so an existing file is a whole snapshot from an earlier attempt of this same run and is
 * reused rather than taken twice.
 */
export function takeSnapshot(deps: ActivityDeps) {
  return (input: TakeSnapshotInput): Promise<SnapshotFile> =>
    whilePreparing(
      () => ({ step: 'snapshot' }),
      () =>
        withSnapshotHost(
          deps.config,
          input.cluster,
          undefined,
          snapshotSourceOf(findCluster(deps.config, input.cluster)),
          async (host) => {
            const { cluster } = host;
            const node = cluster.nodes[0];
            const runDir = `${host.workDir}/backups/${checkRunKey(input.runKey)}`;
            const path = `${runDir}/snapshot.db`;
            const run = (argv: string[], allowFailure = false) => host.run(argv, { allowFailure });
            // This run's own scratch copy, as large as the database: removed whenever the run will not use it.
            const discard = async () => {
              await run(['rm', '-rf', '--', runDir], true);
            };
            const existing = await run(['test', '-s', path], true);
            if (existing.code !== 0) {
              // A short probe first: an untrusted client certificate (TLS 1.3 reports it after the handshake) or an
              // unreachable etcd would otherwise keep snapshot save retrying for its whole 10-minute command timeout.
              const probe = await run(host.etcdctl('--command-timeout=15s', 'endpoint', 'status', '-w', 'json'), true);
              if (probe.code !== 0) throw snapshotFailure(host, 'cannot reach etcd', probe);
              await run(['mkdir', '-p', '-m', '0700', runDir]);
              const saved = await run(host.etcdctl('--command-timeout=600s', 'snapshot', 'save', path), true);
              if (saved.code !== 0) throw snapshotFailure(host, 'etcdctl snapshot save failed', saved);
            }
            const status = await checkSnapshotFile(host, path).catch(async (err: unknown) => {
              // Refused for good (empty: etcd wiped; unreadable): the run ends here and no later step would remove its
              // scratch copy, which is as large as the database (the 60-minute soak found two left on the node).
              if (err instanceof ApplicationFailure && err.nonRetryable) await discard();
              throw err;
            });
            // Below the floor, etcd started over: the snapshot must never become the newest backup, so it goes (a retry
            // takes a new one).
            const regression = await checkRevisionFloor(deps, cluster, status.revision, input.allowRevisionRegression === true, discard);
            const stat = await run(['stat', '-c', '%s %Y', path]);
            const [size, mtime] = stat.stdout.trim().split(' ').map(Number);
            return {
              node: node.name,
              source: host.source,
              runDir,
              path,
              takenAt: new Date(mtime * 1000).toISOString(),
              sizeBytes: size,
              status,
              ...(regression ? { revisionRegressionAllowed: regression } : {}),
            };
          },
          { signal: cancellationSignal() },
        ),
    );
}

/** Names the host, the cause and the fix; bad certificates and a missing etcdctl are not retried, an etcd that is down may come back. */
function snapshotFailure(host: SnapshotHost, what: string, r: RemoteResult): ApplicationFailure {
  const { cluster } = host;
  const direct = cluster.etcd.direct;
  const lines = (r.stderr || r.stdout).trim().split('\n');
  // etcdctl's own last line is often just "context deadline exceeded"; the gRPC warning above it has the reason.
  const reason = lines.find((l) => /certificate|x509|tls:/i.test(l))?.match(/(x509|tls)[^"\\]*/)?.[0];
  const why = [reason, ...lines.slice(-2)].filter(Boolean).join(' | ');
  const hint = /certificate|x509|tls/i.test(why)
    ? ` Check ${direct ? 'etcd.direct.' : 'etcd.'}caFile/certFile/keyFile in the config.`
    : /connection refused|deadline|unavailable/i.test(why)
      ? ` Is etcd running and reachable from ${host.label} at ${direct ? direct.endpoints.join(',') : cluster.etcd.endpoint}?`
      : /not found|No such file/i.test(why)
        ? ` Is ${direct ? direct.etcdctl : cluster.etcd.etcdctl} installed on ${host.label} (${direct ? 'etcd.direct.etcdctl' : 'etcd.etcdctl'} in the config)?`
        : '';
  const permanent = /certificate|x509|tls:|not found|No such file/i.test(why);
  const message = `${what} on ${host.label}: ${why}.${hint}`;
  return permanent ? ApplicationFailure.nonRetryable(message, 'SnapshotFailed') : ApplicationFailure.retryable(message, 'SnapshotFailed');
}
