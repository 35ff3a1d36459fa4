import { ApplicationFailure } from '@temporalio/common';
import type { Revision } from '../../src/etcd/revision';
import type { Compression } from '../../src/backup/object-keys';
import type { StreamedObject } from '../../src/backup/stream-to-s3';
import { nodeCompressCommand, type CompressOn } from '../../src/backup/codec';
import { followSnapshotCommand, parseFollowHeader, readFirstLine } from '../../src/backup/follow-snapshot';
import { etcdctl } from '../../src/etcd/commands';
import { checkRunKey } from '../../src/run-key';
import { RemoteCommandError } from '../../src/ssh/run';
import { withClusterNode } from '../../src/ssh/session';
import type { ActivityDeps } from '../deps';
import { cancellationSignal, whilePreparing } from '../heartbeat';
import { checkRevisionFloor, refusalOf, type RevisionRegressionAllowed } from './revision-check';
import { abortPreviousAttempt, streamedSnapshotKey } from './stream-snapshot';
import { streamCommand } from './upload';

export interface StreamWhileSavingInput {
  cluster: string;
  /** Names this run's folder on the node, as for takeSnapshot: a retried attempt finds the file of an earlier one. */
  runKey: string;
  prefix: string;
  compression: Compression;
  compressOn?: CompressOn;
  encryptionKeyId: string | null;
  allowRevisionRegression?: boolean;
}

/** How many starts of `snapshot save` may meet a write before the file is taken first instead. */
export const PIN_ATTEMPTS = 8;

export type StreamedWhileSaving =
  | {
      streamed: true;
      node: string;
      /** When the snapshot started (its first bytes were in the file); names the objects with `revision`. */
      takenAt: string;
      /** etcd's revision, unchanged from before the save to its first bytes; `snapshot status` checks it on the file. */
      revision: Revision;
      serverVersion?: string;
      /** Starts of `snapshot save` it took to pin the revision (a write during a start means another). */
      pinAttempts: number;
      object: StreamedObject;
      /** The finished file, read by the verify step and removed once the backup is complete. */
      runDir: string;
      path: string;
      revisionRegressionAllowed?: RevisionRegressionAllowed;
    }
  | {
      streamed: false;
      /** Why the file is taken first this time (a written-to etcd, an earlier attempt's file, a failure to explain). */
      why: string;
    };

/**
 * SSH mode: `etcdctl snapshot save` on the node, read as it grows, compressed there and uploaded (compressed,
 * encrypted, multipart) while etcd still writes it (src/backup/follow-snapshot.ts). The upload is completed only when
 * etcdctl exited 0 and renamed its file, the file's size is the byte count that arrived, and the bytes end with etcd's
 * own SHA-256 of them; otherwise it is aborted and nothing is stored. When the revision cannot be pinned, or an earlier
 * attempt left the file, or etcd refused, it says so (`streamed: false`) and the workflow takes the file path
 * (takeSnapshot, which reuses the file and names any failure with its fix).
 */
export function streamWhileSaving(deps: ActivityDeps) {
  return (input: StreamWhileSavingInput): Promise<StreamedWhileSaving> => {
    const signal = cancellationSignal();
    return whilePreparing(
      () => ({ step: 'snapshot' }),
      () =>
        withClusterNode(
          deps.config,
          input.cluster,
          undefined,
          async (session) => {
            const { cluster, node } = session;
            const runDir = `${cluster.paths.workDir}/backups/${checkRunKey(input.runKey)}`;
            const path = `${runDir}/snapshot.db`;
            await abortPreviousAttempt(cluster, signal);
            const onNode = input.compressOn === 'node' && input.compression !== 'none';
            const remote = await session.stream(
              followSnapshotCommand({
                etcdctl: etcdctl(cluster),
                runDir,
                path,
                compress: onNode ? nodeCompressCommand(input.compression) : undefined,
                attempts: PIN_ATTEMPTS,
              }),
            );
            let streaming = false;
            try {
              // Seconds when etcd is written to at every start (the last save finishes before the header says so).
              const line = await readFirstLine(remote.stdout, signal);
              // No header: the script failed before it could say which way it went (etcd sent nothing in time, ...).
              if (line === '') {
                const ended = await remote.done.then(
                  () => new Error('it printed nothing'),
                  (err: unknown) => err,
                );
                throw saveFailed(node.name, ended);
              }
              const header = parseFollowHeader(line);
              if (header.kind === 'file')
                return { streamed: false, why: 'an earlier attempt of this run left the whole file: it is uploaded' };
              if (header.kind === 'failed') return { streamed: false, why: header.why };
              if (header.kind === 'unpinned') {
                return {
                  streamed: false,
                  why: `etcd was written to while each of ${header.attempts} snapshots started (revisions ${header.moves}): the file was taken first`,
                };
              }
              streaming = true;
              const takenAt = new Date().toISOString();
              const { revision } = header;
              const key = streamedSnapshotKey(input, cluster.name, `etcd on node "${node.name}"`, revision, takenAt);
              // Below the floor the stream stops at once; otherwise the answer is awaited before completing. A refused
              // snapshot's folder goes with it (etcdctl, still writing, then fails to rename; nothing is kept).
              const floor = checkRevisionFloor(deps, cluster, revision, input.allowRevisionRegression === true, async () => {
                await session.run(['rm', '-rf', '--', runDir], { allowFailure: true });
              });
              floor.catch(() => remote.close());
              let object: StreamedObject;
              try {
                object = await streamCommand(
                  deps,
                  cluster,
                  remote,
                  { cluster: cluster.name, node: node.name, key, compression: input.compression, encryptionKeyId: input.encryptionKeyId },
                  {
                    arrivesCompressed: onNode,
                    etcdSnapshotFrom: `node "${node.name}"`,
                    beforeComplete: async (plainBytes) => {
                      // The script exits 0 only when etcdctl did and renamed the whole file.
                      await remote.done.catch((err: unknown) => {
                        throw saveFailed(node.name, err);
                      });
                      const size = Number((await session.run(['stat', '-c', '%s', '--', path])).stdout.trim());
                      if (size !== plainBytes) {
                        throw ApplicationFailure.retryable(
                          `${plainBytes} bytes of the snapshot arrived from node "${node.name}", its file has ${size}`,
                          'TransferCorrupted',
                        );
                      }
                      await floor;
                    },
                  },
                );
              } catch (err) {
                // The floor's refusal is why the stream stopped; otherwise the stream's or the store's own error.
                // The node's script failing first (etcdctl's exit) is said in its own words, not with the whole script.
                throw (await refusalOf(floor)) ?? (err instanceof RemoteCommandError ? saveFailed(node.name, err) : err);
              }
              const regression = await floor;
              return {
                streamed: true,
                node: node.name,
                takenAt,
                revision,
                serverVersion: header.serverVersion,
                pinAttempts: header.attempts,
                object,
                runDir,
                path,
                ...(regression ? { revisionRegressionAllowed: regression } : {}),
              };
            } finally {
              // Not streaming: the script only said why and ended; its output was the header alone.
              if (!streaming) remote.close();
            }
          },
          { signal },
        ),
    );
  };
}

/** The node's script failed: a retry starts over. Said in the script's own words, not its command line (the script). */
function saveFailed(nodeName: string, err: unknown): ApplicationFailure {
  const why = err instanceof RemoteCommandError ? err.outcome : err instanceof Error ? err.message : String(err);
  return ApplicationFailure.retryable(`etcdctl snapshot save on node "${nodeName}" failed: ${why}`, 'SnapshotFailed');
}
