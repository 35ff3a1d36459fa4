import { mkdir, rm } from 'node:fs/promises';
import { posix } from 'node:path';
import { Writable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { readTrustedBackup, trustRulesFor, UntrustedBackup } from '../../src/backup/trusted-catalog';
import { loadEncryptionKey } from '../../src/backup/keyring';
import { etcdVersionForTools, type StoredObject } from '../../src/backup/manifest';
import { BackupIntegrityError, readStoredObject } from '../../src/backup/read-object';
import { findCluster } from '../../src/config/load';
import type { ClusterConfig } from '../../src/config/schema';
import { apiserverFor, readThroughApi, startApiserver } from '../../src/drill/apiserver';
import { checkArchive } from '../../src/drill/archive';
import { countKeys, DrillProblem, etcdToolsFor, restoreAndStartEtcd, restoredRevision } from '../../src/drill/etcd';
import { workerHost, type DrillHost, type HostSink } from '../../src/drill/host';
import { withDrillHost, workerCopyOf } from '../../src/drill/site';
import { drillSpaceNeeded } from '../../src/drill/space';
import type { DrillReport } from '../../src/drill/report';
import { checkRunKey } from '../../src/run-key';
import { durationMs } from '../../src/schedules/backup-schedules';
import { s3ClientFor } from '../../src/storage/s3-client';
import type { ActivityDeps } from '../deps';
import { cancellationSignal, throttledHeartbeat, transferring, whilePreparing } from '../heartbeat';

export interface RunDrillInput {
  cluster: string;
  manifestKey: string;
  runKey: string;
}

export type DrillFindings = Pick<
  DrillReport,
  'checks' | 'problems' | 'countedThrough' | 'counts' | 'sampled' | 'certificates' | 'drillHost'
>;

/** <drill.scratchDir>/<cluster>-<run key>: a retried attempt and the clean-up step find it by the run key alone. */
export function scratchDirOf(scratchDir: string, runKey: string): string {
  return `${scratchDir}/${checkRunKey(runKey)}`;
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
/** Seconds since `t0`, for the checks: where a drill's time goes is part of what it reports. */
const took = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

async function fetchInto(
  deps: ActivityDeps,
  cluster: ClusterConfig,
  obj: StoredObject,
  sink: NodeJS.WritableStream & import('node:stream').Writable,
) {
  const key = obj.encryption ? await loadEncryptionKey(deps.config, obj.encryption.keyId) : undefined;
  const s3 = await s3ClientFor(cluster.storage);
  const heartbeat = throttledHeartbeat();
  try {
    return await transferring(() =>
      readStoredObject(
        s3,
        cluster.storage.bucket,
        obj,
        () => key,
        sink,
        (bytes) => heartbeat({ key: obj.key, bytes }),
        cancellationSignal(),
      ),
    );
  } finally {
    s3.destroy();
  }
}

/** Stops what the run started on the drill host and removes its scratch dir there, and the worker's copy of the archive. */
async function clearRun(host: DrillHost, scratch: string, workerCopy: string | undefined): Promise<number[]> {
  if (workerCopy) await rm(workerCopy, { recursive: true, force: true });
  return host.removeScratch(scratch);
}

/** An object fetched and verified into a file or `tar -x` on the drill host; the target is stopped when it fails. */
async function fetchTo(deps: ActivityDeps, cluster: ClusterConfig, obj: StoredObject, target: HostSink) {
  try {
    const read = await fetchInto(deps, cluster, obj, target.sink);
    await target.done;
    return read;
  } catch (err) {
    target.abort();
    throw err;
  }
}

/** One stream into several targets (the archive: unpacked on the drill node and in the worker's copy), at the slowest one's pace. */
function fanOut(targets: HostSink[]): HostSink {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      let left = targets.length;
      let failed = false;
      for (const t of targets)
        t.sink.write(chunk, (err) => {
          if (failed) return;
          if (err) {
            failed = true;
            return cb(err);
          }
          if (--left === 0) cb();
        });
    },
    final(cb) {
      for (const t of targets) t.sink.end();
      cb();
    },
  });
  return {
    sink,
    done: Promise.all(targets.map((t) => t.done)).then(() => undefined),
    abort: () => targets.forEach((t) => t.abort()),
  };
}

/** A `tar -x` that fails is a finding about the archive (a fault of the bucket's bytes was already caught by the hashes). */
const unpacks = (t: HostSink, where: string): HostSink => ({
  ...t,
  done: t.done.catch((err: Error) => {
    throw new DrillProblem(`the control-plane archive does not unpack${where}: ${err.message.replace(/^.*exited \S+: /, '')}`);
  }),
});

/**
 * The manifest the drill checks against, read the way a recovery reads it (src/backup/trusted-catalog.ts): the
 * numbers it proves something with count only if the manifest is authentic and stored where its content says.
 * Unsigned is let through here and named as a problem, so the report says why a recovery would refuse it.
 */
async function drilledManifest(deps: ActivityDeps, cluster: ClusterConfig, manifestKey: string, findings: DrillFindings) {
  const s3 = await s3ClientFor(cluster.storage);
  try {
    const { manifest, authentication } = await readTrustedBackup(s3, trustRulesFor(deps.config, cluster, true), manifestKey);
    if (authentication.status === 'authentic') findings.checks.push(`manifest signed with key ${authentication.keyId}: its tag matches`);
    else if (!cluster.backup.encryptionKey)
      findings.checks.push('manifest not signed (the cluster does not encrypt its backups: there is no key to sign with)');
    else
      findings.problems.push(
        'the manifest is not signed (written before manifests were signed, or its tag was removed): a recovery refuses it without acceptUnsignedManifest',
      );
    return manifest;
  } catch (err) {
    if (err instanceof UntrustedBackup && err.kind !== 'missing') return err;
    throw err;
  } finally {
    s3.destroy();
  }
}

/**
 * The drill itself, on the drill host (the worker, or the drill node over SSH: src/drill/host.ts): fetch and verify
 * the backup into a scratch dir there, check its control-plane archive (on the worker, in a copy of its own when the
 * drill host is a drill node), restore the snapshot with etcd's own tools of its version, run it as a throwaway etcd on loopback and a throwaway
 * kube-apiserver against it, and read the objects back. What the backup gets wrong is returned as problems (the
 * report needs them); a fault of the drill host or the bucket is thrown and retried. Whatever it started or wrote
 * is removed when it ends, and at its start (an attempt that died with the worker left them).
 */
export function runDrill(deps: ActivityDeps) {
  return async (input: RunDrillInput): Promise<DrillFindings> => {
    const cluster = findCluster(deps.config, input.cluster);
    const drill = deps.config.drill;
    const scratch = scratchDirOf(drill.scratchDir, input.runKey);
    // With a drill node the worker keeps its own copy of the (small) archive to check; else it is the scratch dir's.
    const workerCopy = drill.node ? workerCopyOf(input.runKey) : undefined;
    const localCp = workerCopy ? `${workerCopy}/control-plane` : `${scratch}/control-plane`;
    const timeoutMs = durationMs(drill.startTimeout);
    const findings: DrillFindings = {
      checks: [],
      problems: [],
      countedThrough: 'none',
      counts: { matched: [], differed: [] },
      sampled: {},
      certificates: [],
    };
    // The timer keeps the restore, the start and the counts alive; a fetch heartbeats on its bytes, so one that stalls
    // times out.
    return whilePreparing(
      () => ({ scratch, checks: findings.checks.length }),
      () =>
        withDrillHost(
          drill,
          async (host, paths) => {
            findings.drillHost = host.label;
            findings.checks.push(`drill host: ${host.label}`);
            await clearRun(host, scratch, workerCopy);
            // Leftovers of a worker that died while its retry ran on another: older than any attempt may run (3 h).
            await host.sweepStale(drill.scratchDir, 4 * 3_600_000);
            await host.mkdir(`${scratch}/control-plane`);
            if (workerCopy) await mkdir(localCp, { recursive: true, mode: 0o700 });
            try {
              const manifest = await drilledManifest(deps, cluster, input.manifestKey, findings);
              if (manifest instanceof UntrustedBackup) {
                findings.problems.push(manifest.message);
                return findings;
              }
              const tools = await etcdToolsFor(host, paths, etcdVersionForTools(manifest));
              if (typeof tools === 'string') throw ApplicationFailure.nonRetryable(tools, 'PreflightFailed');
              const [need, free] = [drillSpaceNeeded(manifest), await host.freeBytes(scratch)];
              if (free < need)
                throw ApplicationFailure.nonRetryable(
                  `the drill's scratch dir ${drill.scratchDir}${workerCopy ? ` on ${host.where}` : ''} has ${mib(free)} free; this backup needs about ${mib(need)} there (the snapshot twice, as a file and as etcd's restored data dir with its 64 MB WAL segment, and the control-plane files): free space or point drill.scratchDir at a larger disk`,
                  'NoSpace',
                );
              try {
                const snapshotFile = `${scratch}/snapshot.db`;
                let t0 = Date.now();
                const read = await fetchTo(deps, cluster, manifest.snapshot, await host.writeFile(snapshotFile));
                findings.checks.push(
                  `snapshot fetched: ${mib(read.storedSize)} stored, ${mib(read.plainSize)} restored; bucket checksum, ${manifest.snapshot.encryption ? 'decryption, ' : ''}stored and plain sha256 match the manifest (${took(t0)})`,
                );
                if (!manifest.controlPlaneFiles && manifest.source?.kind === 'imported')
                  // Known and said at import: such a backup restores in place only, with the node's own PKI.
                  findings.checks.push(
                    `not checked: an imported snapshot (from ${manifest.source.from}) has no control-plane archive (PKI, manifests), so it restores in place only`,
                  );
                else if (!manifest.controlPlaneFiles)
                  findings.problems.push('the backup has no control-plane archive: a lost node cannot be rebuilt from it');
                else {
                  const onHost = unpacks(await host.untar(`${scratch}/control-plane`), workerCopy ? ` on ${host.where}` : '');
                  const targets = workerCopy ? [onHost, unpacks(await workerHost.untar(localCp), ' on the worker')] : [onHost];
                  await fetchTo(deps, cluster, manifest.controlPlaneFiles, targets.length > 1 ? fanOut(targets) : onHost);
                  findings.checks.push(`control-plane archive fetched and verified (${mib(manifest.controlPlaneFiles.storedSize)})`);
                }
                const archive = manifest.controlPlaneFiles ? await checkArchive(cluster, localCp) : undefined;
                if (archive) {
                  findings.checks.push(...archive.checks);
                  findings.problems.push(...archive.problems);
                  findings.certificates = archive.certificates;
                }

                t0 = Date.now();
                const etcd = await restoreAndStartEtcd(host, tools, scratch, snapshotFile, timeoutMs);
                findings.checks.push(
                  `${tools.restore.kind} snapshot restore (etcd ${tools.minor}) and a throwaway etcd on ${etcd.clientUrl} (${took(t0)})`,
                );
                const revision = manifest.etcd.revision;
                const restoredAt = await restoredRevision(host, tools, etcd.clientUrl);
                if (restoredAt !== revision)
                  throw new DrillProblem(
                    `the restored etcd is at revision ${restoredAt}, the manifest says ${revision}: the snapshot is not the one the manifest describes`,
                  );
                findings.checks.push(`restored etcd at revision ${restoredAt}, as the manifest says`);
                const inEtcd = await countKeys(host, tools, etcd.clientUrl, revision);
                const compare = (actual: Record<string, number>, resources: string[], where: string) => {
                  for (const resource of resources) {
                    const c = { resource, expected: manifest.resourceCounts[resource] ?? 0, actual: actual[resource] ?? 0 };
                    if (c.expected === c.actual) findings.counts.matched.push(c);
                    else {
                      findings.counts.differed.push(c);
                      findings.problems.push(
                        `${resource}: ${c.actual} ${where} at revision ${revision}, the backup recorded ${c.expected}`,
                      );
                    }
                  }
                };
                const bin = await apiserverFor(host, paths, manifest.kubernetesVersion);
                if (!bin || !archive) {
                  compare(inEtcd, [...new Set([...Object.keys(manifest.resourceCounts), ...Object.keys(inEtcd)])], 'keys in etcd');
                  findings.countedThrough = 'etcd';
                  findings.checks.push(
                    `counted keys in etcd only: ${!archive ? 'no control-plane archive to start an API server with' : `no kube-apiserver configured for Kubernetes ${manifest.kubernetesVersion ?? '(unknown version)'} (${paths.field}.kubeApiserver)`}`,
                  );
                } else {
                  t0 = Date.now();
                  const api = await startApiserver(
                    host,
                    bin,
                    scratch,
                    `${scratch}/control-plane`,
                    localCp,
                    posix.basename(cluster.paths.pkiDir),
                    archive,
                    etcd.clientUrl,
                    timeoutMs,
                  );
                  if (api.notReady) findings.problems.push(api.notReady);
                  else
                    findings.checks.push(
                      `throwaway kube-apiserver (${bin}) ready with the backup's PKI on ${api.client.server} (${took(t0)})`,
                    );
                  t0 = Date.now();
                  const read = await readThroughApi(api.client, manifest.resourceCounts, revision, drill.sampleSize);
                  findings.countedThrough = 'api';
                  const throughApi = Object.keys(read.counts);
                  compare(read.counts, throughApi, 'through the API');
                  // What the API does not serve by these names (services/specs and endpoints, CRDs, ...) is compared in etcd.
                  compare(
                    inEtcd,
                    [...new Set([...Object.keys(manifest.resourceCounts), ...Object.keys(inEtcd)])].filter((r) => !throughApi.includes(r)),
                    'keys in etcd',
                  );
                  findings.sampled = read.sampled;
                  findings.problems.push(...read.problems);
                  findings.checks.push(
                    `read back through the API: ${Object.entries(read.sampled)
                      .map(([r, n]) => `${r} ${n}`)
                      .join(', ')} (${took(t0)})`,
                  );
                }
              } catch (err) {
                if (err instanceof BackupIntegrityError) findings.problems.push(err.message);
                else if (err instanceof DrillProblem) findings.problems.push(err.message);
                else throw err;
              }
              return findings;
            } finally {
              await clearRun(host, scratch, workerCopy);
            }
          },
          cancellationSignal(),
        ),
    );
  };
}

/** Stops whatever a drill run recorded and removes its scratch dir (the workflow runs it whatever happened). */
export function cleanupDrill(deps: ActivityDeps) {
  return async (input: { runKey: string }): Promise<{ stopped: number[] }> => {
    const drill = deps.config.drill;
    const workerCopy = drill.node ? workerCopyOf(input.runKey) : undefined;
    return {
      stopped: await withDrillHost(
        drill,
        (host) => clearRun(host, scratchDirOf(drill.scratchDir, input.runKey), workerCopy),
        cancellationSignal(),
      ),
    };
  };
}
