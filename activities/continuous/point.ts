import { CopyObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { loadEncryptionKey } from '../../src/backup/keyring';
import type { BackupManifest } from '../../src/backup/manifest';
import { backupObjectKeys } from '../../src/backup/object-keys';
import { readStoredObject } from '../../src/backup/read-object';
import { streamToS3 } from '../../src/backup/stream-to-s3';
import { readTrustedBackup, trustRulesFor, UntrustedBackup, type TrustRules } from '../../src/backup/trusted-catalog';
import { findCluster } from '../../src/config/load';
import { chainWalk } from '../../src/continuous/chain';
import { planPoint, PointUnavailable, type PointPlan } from '../../src/continuous/point';
import { replayer, ReplayMismatch, type ReplayReport } from '../../src/continuous/replay';
import { listSegmentKeys, readSegment, UntrustedSegment } from '../../src/continuous/segment-store';
import { countKeys, DrillProblem, restoreAndStartEtcd } from '../../src/drill/etcd';
import { workerHost } from '../../src/drill/host';
import { removeScratch } from '../../src/drill/processes';
import { createEtcdClient } from '../../src/etcd/grpc/client';
import { snapshotStream } from '../../src/etcd/grpc/snapshot';
import { checkRunKey } from '../../src/run-key';
import { durationMs } from '../../src/schedules/backup-schedules';
import { s3ClientFor } from '../../src/storage/s3-client';
import { objectLockFor } from '../../src/storage/upload-stream';
import { readerTools } from '../backup/import';
import { writeManifest } from '../backup/finish';
import { parseSnapshotStatus } from '../backup/inspect-snapshot';
import type { ActivityDeps } from '../deps';
import { cancellationSignal, throttledHeartbeat, transferring, whileHeartbeating, whilePreparing } from '../heartbeat';

/**
 * A restore to a point (issue 22), off the control plane: the plan proves the point from the bucket; the build
 * restores the chain's base into a throwaway etcd on the worker, replays the segments up to the point, snapshots that
 * etcd and stores the snapshot as a backup of its own (signed manifest, `source.kind: point-in-time`, named by the
 * point's time and revision), which the recovery then restores like any other: checked, revision-bumped, verified.
 */

/** Everything that decides a point-in-time restore, read and checked before anything is touched. */
export function planPointInTime(deps: ActivityDeps) {
  return async (input: { cluster: string; at: string; stopAtBreak?: boolean }): Promise<PointPlan> => {
    const cluster = findCluster(deps.config, input.cluster);
    const s3 = await s3ClientFor(cluster.storage, `clusters.${cluster.name}.storage`);
    try {
      return await whileHeartbeating(
        () => ({ step: 'prove the point', at: input.at }),
        () => planPoint(s3, trustRulesFor(deps.config, cluster), input.at, { stopAtBreak: input.stopAtBreak, now: new Date() }),
      );
    } catch (err) {
      if (err instanceof PointUnavailable) throw ApplicationFailure.nonRetryable(err.message, 'PointUnavailable');
      throw err;
    } finally {
      s3.destroy();
    }
  };
}

export interface BuiltPoint {
  /** The point's own backup, which the recovery restores. */
  manifestKey: string;
  revision: string;
  time: string;
  /** False when an earlier run had built the same point already (the same key, believed). */
  built: boolean;
  replay?: ReplayReport;
  /** Where the build's time went, in seconds: fetching the base, starting it, replaying, snapshot and counts, storing. */
  seconds?: Record<'fetch' | 'start' | 'replay' | 'snapshot' | 'store', number>;
}

/** Keys that carried a lease come back under a lease of this length: Kubernetes' Event TTL (kube-apiserver --event-ttl). */
export const REPLAYED_LEASE_TTL_SECONDS = 3600;

export function buildPoint(deps: ActivityDeps) {
  return async (input: {
    cluster: string;
    plan: PointPlan;
    runKey: string;
    workflow: { workflowId: string; runId: string };
    /** false: rebuild and check only, store nothing (a drill of the chain). Default true. */
    store?: boolean;
  }): Promise<BuiltPoint> => {
    const store = input.store ?? true;
    const cluster = findCluster(deps.config, input.cluster);
    const { plan } = input;
    const rules = trustRulesFor(deps.config, cluster);
    const s3 = await s3ClientFor(cluster.storage, `clusters.${cluster.name}.storage`);
    const scratch = `${deps.config.drill.scratchDir}/${checkRunKey(input.runKey)}`;
    const heartbeat = throttledHeartbeat();
    try {
      const base = await readTrustedBackup(s3, rules, plan.base.manifestKey);
      if (plan.segments === 0) return { manifestKey: base.manifestKey, revision: plan.revision, time: plan.time, built: false };
      const keys = backupObjectKeys({
        prefix: cluster.storage.prefix,
        cluster: cluster.name,
        takenAt: plan.time,
        revision: plan.revision,
        compression: base.manifest.snapshot.compression,
        encrypted: base.manifest.snapshot.encryption !== null,
      });
      const existing = await readTrustedBackup(s3, rules, keys.manifest).catch((err: unknown) => {
        if (err instanceof UntrustedBackup && err.kind === 'missing') return undefined;
        throw err;
      });
      if (existing && store) return { manifestKey: existing.manifestKey, revision: plan.revision, time: plan.time, built: false };

      // The timer keeps the restore, the snapshot and the checks alive; the fetch, the replay and the upload heartbeat
      // on their progress, so one that stalls times out.
      return await whilePreparing(
        () => ({ step: 'point', scratch }),
        async () => {
          await removeScratch(scratch);
          await mkdir(scratch, { recursive: true, mode: 0o700 });
          const tools = await readerTools(deps.config);
          // 1. the base, as the recovery would fetch it: checked against its manifest on the way
          const baseFile = `${scratch}/base.db`;
          const keyId = base.manifest.snapshot.encryption?.keyId;
          const key = keyId ? await loadEncryptionKey(deps.config, keyId) : undefined;
          const seconds = { fetch: 0, start: 0, replay: 0, snapshot: 0, store: 0 };
          let lap = Date.now();
          const split = (k: keyof typeof seconds) => {
            seconds[k] = Math.round((Date.now() - lap) / 100) / 10;
            lap = Date.now();
          };
          await transferring(() =>
            readStoredObject(
              s3,
              cluster.storage.bucket,
              base.manifest.snapshot,
              (id) => (id === keyId ? key : undefined),
              createWriteStream(baseFile, { mode: 0o600 }),
              (n) => heartbeat({ step: 'fetch base', bytes: n }),
              cancellationSignal(),
            ),
          );
          split('fetch');
          const etcd = await restoreAndStartEtcd(workerHost, tools, scratch, baseFile, durationMs(deps.config.drill.startTimeout));
          split('start');
          const client = createEtcdClient({ endpoint: etcd.clientUrl.replace(/^http:\/\//, ''), tls: 'loopback-plaintext' });
          try {
            // 2. the chain, read and checked again (the bucket may have changed since the plan), replayed to the point
            const replay = await transferring(() =>
              replaySegments(s3, rules, client, plan, (r) => heartbeat({ step: 'replay', revision: r })),
            );
            split('replay');
            // 3. the point's snapshot, etcd's SHA-256 checked, then read by etcd's own reader
            const pointFile = `${scratch}/point.db`;
            const snap = snapshotStream(client, cancellationSignal());
            await pipeline(snap.stream, createWriteStream(pointFile, { mode: 0o600 }));
            await snap.summary;
            const status = await promisify(execFile)(tools.restore.command, ['snapshot', 'status', '-w', 'json', pointFile], {
              env: { ...process.env, ETCDCTL_API: '3' },
            });
            const info = parseSnapshotStatus(status.stdout);
            if (info.revision !== plan.revision)
              throw new DrillProblem(`the rebuilt snapshot is at revision ${info.revision}, not the point's ${plan.revision}`);
            const resourceCounts = await countKeys(workerHost, tools, etcd.clientUrl, plan.revision);
            split('snapshot');
            if (!store) return { manifestKey: keys.manifest, revision: plan.revision, time: plan.time, built: false, replay, seconds };
            // 4. stored as a backup of its own; the base's control-plane archive goes with it (copied in the bucket)
            const stored = await transferring(() =>
              streamToS3({
                s3,
                bucket: cluster.storage.bucket,
                key: keys.snapshot,
                source: createReadStream(pointFile, { highWaterMark: 1024 * 1024 }),
                compression: base.manifest.snapshot.compression,
                encryption: key && keyId ? { key, keyId } : undefined,
                objectLock: objectLockFor(cluster.storage),
                onProgress: (n) => heartbeat({ step: 'upload', bytes: n }),
                signal: cancellationSignal(),
              }),
            );
            const files = base.manifest.controlPlaneFiles;
            if (files)
              await s3.send(
                new CopyObjectCommand({
                  Bucket: cluster.storage.bucket,
                  Key: keys.controlPlaneFiles,
                  CopySource: `${cluster.storage.bucket}/${encodeURIComponent(files.key).replace(/%2F/g, '/')}`,
                }),
              );
            const manifest: BackupManifest = {
              format: 'lifeboat-backup/v1',
              cluster: cluster.name,
              created: plan.time,
              ...(base.manifest.node ? { node: base.manifest.node } : {}),
              etcd: { ...info, serverVersion: base.manifest.etcd.serverVersion },
              ...(base.manifest.kubernetesVersion ? { kubernetesVersion: base.manifest.kubernetesVersion } : {}),
              resourceCounts,
              snapshot: { ...stored, s3Checksum: undefined },
              controlPlaneFiles: files ? { ...files, key: keys.controlPlaneFiles, s3Checksum: undefined } : null,
              verified: true,
              workflow: input.workflow,
              engineVersion: base.manifest.engineVersion,
              source: {
                kind: 'point-in-time',
                base: base.manifestKey,
                chain: plan.chain,
                segments: replay.segments,
                replayedRevisions: replay.revisions,
                leasedKeys: replay.leased.keys,
                leaseTtlSeconds: replay.leased.ttlSeconds,
              },
            };
            await writeManifest(deps)({ cluster: cluster.name, key: keys.manifest, manifest });
            split('store');
            return { manifestKey: keys.manifest, revision: plan.revision, time: plan.time, built: true, replay, seconds };
          } finally {
            client.close();
          }
        },
      );
    } catch (err) {
      if (err instanceof DrillProblem || err instanceof ReplayMismatch || err instanceof UntrustedSegment)
        throw ApplicationFailure.nonRetryable(`the point ${plan.revision} cannot be rebuilt: ${err.message}`, 'PointUnavailable');
      throw err;
    } finally {
      s3.destroy();
      await removeScratch(scratch);
    }
  };
}

/** The chain's segments from the base to the point, each read, believed and linked before it is replayed. */
async function replaySegments(
  s3: S3Client,
  rules: TrustRules,
  client: ReturnType<typeof createEtcdClient>,
  plan: PointPlan,
  onRevision: (r: string) => void,
): Promise<ReplayReport> {
  const replay = await replayer(client, plan.revision, { leaseTtlSeconds: REPLAYED_LEASE_TTL_SECONDS, onRevision });
  const walk = chainWalk(
    { prefix: rules.storage.prefix, cluster: rules.cluster, chain: plan.chain },
    {
      manifestKey: plan.base.manifestKey,
      revision: plan.base.revision,
    },
  );
  for (const key of await listSegmentKeys(s3, rules.storage, rules.cluster, plan.chain)) {
    const segment = await readSegment(s3, rules.storage.bucket, key, rules.loadKey, cancellationSignal());
    const problem = walk.add({ key, segment });
    if (problem) throw new UntrustedSegment(key, problem);
    if (!(await replay.add(key, segment))) break;
  }
  return replay.finish();
}
