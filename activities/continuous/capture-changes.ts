import { ApplicationFailure } from '@temporalio/common';
import type { S3Client } from '@aws-sdk/client-s3';
import { findCluster } from '../../src/config/load';
import type { ClusterConfig } from '../../src/config/schema';
import { loadEncryptionKey } from '../../src/backup/keyring';
import { newestTrustedBackup, trustRulesFor } from '../../src/backup/trusted-catalog';
import { captureSegments, ChainTipError, EtcdReplacedError, readChainTip, type ChainTip, type Durable } from '../../src/continuous/capture';
import { chainIdOf, type Segment } from '../../src/continuous/segment';
import type { SegmentCodec } from '../../src/continuous/segment-store';
import { withEtcdClient } from '../../src/etcd/cluster-client';
import { getKey, WatchCompactedError, type EtcdClient } from '../../src/etcd/grpc';
import { addRevisions, type Revision } from '../../src/etcd/revision';
import { forgetCluster, recordChainBreak, recordDurable } from '../../src/metrics/continuous-metrics';
import { s3ClientFor } from '../../src/storage/s3-client';
import type { ActivityDeps } from '../deps';
import { activityContext, cancellationSignal } from '../heartbeat';

/** A chain as the capture workflow carries it between runs: its id and the full backup it extends. */
export interface ChainRef {
  id: string;
  base: Segment['base'];
}

export interface CaptureChangesInput {
  cluster: string;
  /** The chain the previous run wrote to; the newest full backup's chain when absent (a first run, or after a break). */
  chain?: ChainRef;
  /** How long this run captures before it returns, so the workflow can continue as new with a short history. */
  runSeconds?: number;
}

/** What the last durable step made durable (also the activity's heartbeat details). */
export interface CaptureProgress {
  chain: ChainRef;
  /** The newest segment in the bucket, when the chain has one. */
  key?: string;
  /** The chain's newest durable revision. */
  lastRevision: Revision;
  /** Every revision of etcd up to this one is durable (more than lastRevision when etcd said nothing else changed). */
  knownThrough?: Revision;
  /** When that was known: the recovery point. */
  knownAt?: string;
  segmentsWritten: number;
}

export type CaptureChangesResult =
  /** The run's time is up (or it moved to a newer base's chain): the workflow continues with `chain`. */
  | ({ outcome: 'ran' } & CaptureProgress)
  /**
   * No chain can go on without a new full backup: `no-base` (the cluster has no trusted full backup yet), `compacted`
   * (etcd compacted revisions the chain has not captured: a gap), `untrusted-tip` (the chain's newest segment is not
   * believed). The workflow takes a full backup at once and starts a new chain from it.
   */
  | { outcome: 'needs-backup'; reason: 'no-base' | 'compacted' | 'untrusted-tip' | 'etcd-replaced'; chain?: ChainRef; message: string };

const DEFAULT_RUN_SECONDS = 30 * 60;
/** How often a run looks for a full backup newer than its chain's base (one listing and one manifest read). */
const BASE_CHECK_MS = 60_000;
/** Heartbeats go out on a timer too, so a slow store (a segment write retrying) is not mistaken for a dead worker. */
const HEARTBEAT_MS = 5_000;

/**
 * Continuous backups' long-running step: watches the cluster's etcd (src/etcd/cluster-client.ts) from its chain's tip
 * in the bucket on and writes segments (src/continuous/capture.ts) until `runSeconds` pass or the activity is
 * cancelled. The bucket is the one record of what is durable: every run, and every retry after a crash or an SSH drop,
 * starts from the chain's newest segment there, so nothing is skipped and nothing is written twice. A full backup
 * newer than the chain's base starts a new chain, but only when etcd still holds every revision after that backup
 * (otherwise the old chain goes on: never a gap). A gap that cannot be avoided is returned, never stepped over.
 */
export function captureChanges(deps: ActivityDeps) {
  return async (input: CaptureChangesInput): Promise<CaptureChangesResult> => {
    const cluster = findCluster(deps.config, input.cluster);
    const continuous = cluster.backup.continuous;
    const keyId = cluster.backup.encryptionKey;
    if (!continuous || !keyId)
      throw ApplicationFailure.nonRetryable(
        `cluster "${cluster.name}" has no backup.continuous (with backup.encryptionKey) in the worker's config: add it, or stop capture-${cluster.name} (\`lifeboat schedule sync\` stops it)`,
        'InvalidInput',
      );
    const codec: SegmentCodec = { compression: cluster.backup.compression, key: await loadEncryptionKey(deps.config, keyId), keyId };
    const s3 = await s3ClientFor(cluster.storage, `clusters.${cluster.name}.storage`);
    const log = deps.logger.child({ cluster: cluster.name, activity: 'captureChanges' });
    log.info({ chain: input.chain?.id, attempt: activityContext()?.info.attempt }, 'continuous capture: starting');
    const { signal, release } = await takeOver(cluster.name, log);
    try {
      return await withEtcdClient(
        deps.config,
        cluster.name,
        (client) => new CaptureRun(deps, cluster, s3, client, codec, log, input, signal).run(),
        { signal },
      );
    } catch (err) {
      log.warn({ error: (err as Error).message, cancelled: signal?.aborted ?? false }, 'continuous capture: this run ended early');
      // Stopped on purpose (continuous backups turned off): no lag left behind to alert on. A timeout or a worker
      // shutting down keeps it, growing, since the capture is then behind.
      if (signal?.aborted && (signal.reason as Error | undefined)?.message === 'CANCELLED') forgetCluster(cluster.name);
      throw err;
    } finally {
      s3.destroy();
      release();
    }
  };
}

/** The capture running in this worker process for each cluster: how to stop it, and when it has stopped. */
const running = new Map<string, { takeover: AbortController; stopped: Promise<void> }>();

/**
 * Two captures of one chain must never write side by side (each would write the next segment its own way). Within a
 * worker a new run of a cluster's capture stops the one still running (an attempt whose workflow is gone, a retry
 * after a heartbeat timeout) and waits for it to end before it reads the chain's tip. The signal aborts on the
 * activity's cancellation or on a newer run taking over.
 */
async function takeOver(cluster: string, log: ActivityDeps['logger']): Promise<{ signal: AbortSignal; release: () => void }> {
  const previous = running.get(cluster);
  if (previous) {
    log.warn('continuous capture: another run of this cluster is still running in this worker; stopping it first');
    previous.takeover.abort(new Error('a newer run of the capture of this cluster took over'));
    await previous.stopped;
  }
  const takeover = new AbortController();
  let release!: () => void;
  const mine = { takeover, stopped: new Promise<void>((resolve) => (release = resolve)) };
  running.set(cluster, mine);
  const cancelled = cancellationSignal();
  return {
    signal: cancelled ? AbortSignal.any([cancelled, takeover.signal]) : takeover.signal,
    release: () => {
      if (running.get(cluster) === mine) running.delete(cluster);
      release();
    },
  };
}

class CaptureRun {
  private progress?: CaptureProgress;
  private readonly deadline: number;

  constructor(
    private readonly deps: ActivityDeps,
    private readonly cluster: ClusterConfig,
    private readonly s3: S3Client,
    private readonly client: EtcdClient,
    private readonly codec: SegmentCodec,
    private readonly log: ActivityDeps['logger'],
    private readonly input: CaptureChangesInput,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.deadline = Date.now() + (input.runSeconds ?? DEFAULT_RUN_SECONDS) * 1000;
  }

  async run(): Promise<CaptureChangesResult> {
    const newest = await this.newestBase();
    if (!newest)
      return {
        outcome: 'needs-backup',
        reason: 'no-base',
        message: `cluster "${this.cluster.name}" has no trusted full backup to start a chain of segments from`,
      };
    let chain = this.input.chain ?? newest;
    if (chain.id !== newest.id && (await this.etcdStillHasAfter(newest))) chain = newest;
    let tip: ChainTip;
    try {
      tip = await readChainTip(
        this.s3,
        this.cluster.storage,
        this.cluster.name,
        chain.id,
        chain.base,
        this.loadKey,
        this.resumeAfter(chain),
      );
    } catch (err) {
      if (err instanceof ChainTipError) return this.chainBreak('untrusted-tip', chain, err.message);
      throw err;
    }
    const ctx = activityContext();
    const timer = ctx ? setInterval(() => ctx.heartbeat(this.progress), HEARTBEAT_MS) : undefined;
    try {
      for (;;) {
        this.durable(chain, tip);
        this.log.info({ chain: chain.id, from: addRevisions(tip.lastRevision, 1), sequence: tip.sequence }, 'continuous capture: watching');
        const moved = await this.captureUntil(chain, tip);
        if (this.signal?.aborted) throw this.signal.reason instanceof Error ? this.signal.reason : new Error('cancelled');
        if (moved === 'time-up') return { outcome: 'ran', ...this.progress! };
        // A newer full backup: its chain starts where etcd still holds every revision after it.
        this.log.info({ from: chain.id, to: moved.id }, 'continuous capture: a newer full backup, starting its chain');
        chain = moved;
        tip = await readChainTip(this.s3, this.cluster.storage, this.cluster.name, chain.id, chain.base, this.loadKey);
      }
    } catch (err) {
      if (err instanceof WatchCompactedError) return this.chainBreak('compacted', chain, err.message);
      if (err instanceof ChainTipError) return this.chainBreak('untrusted-tip', chain, err.message);
      if (err instanceof EtcdReplacedError) return this.chainBreak('etcd-replaced', chain, err.message);
      throw err;
    } finally {
      if (timer) clearInterval(timer);
    }
  }

  /** Captures until the run's time is up, the activity is cancelled, or a newer base's chain can start (returned). */
  private async captureUntil(chain: ChainRef, tip: ChainTip): Promise<'time-up' | ChainRef> {
    const stop = new AbortController();
    const onCancel = () => stop.abort();
    this.signal?.addEventListener('abort', onCancel, { once: true });
    if (this.signal?.aborted) stop.abort();
    let switchTo: ChainRef | undefined;
    const timeUp = setTimeout(() => stop.abort(), Math.max(0, this.deadline - Date.now()));
    const check = setInterval(() => {
      void this.newerBaseThanChain(chain).then(
        (b) => {
          if (b && !stop.signal.aborted) {
            switchTo = b;
            stop.abort();
          }
        },
        (err: Error) => this.log.warn({ error: err.message }, 'continuous capture: cannot look for a newer full backup'),
      );
    }, BASE_CHECK_MS);
    try {
      await captureSegments({
        s3: this.s3,
        storage: this.cluster.storage,
        cluster: this.cluster.name,
        codec: this.codec,
        tip,
        client: this.client,
        segmentSeconds: this.cluster.backup.continuous!.segmentSeconds,
        maxSegmentBytes: this.cluster.backup.continuous!.maxSegmentBytes,
        signal: stop.signal,
        onDurable: (d) => this.durable(chain, d, d),
      });
    } finally {
      clearTimeout(timeUp);
      clearInterval(check);
      this.signal?.removeEventListener('abort', onCancel);
    }
    return switchTo ?? 'time-up';
  }

  private durable(chain: ChainRef, tip: ChainTip, d?: Durable): void {
    const written = (this.progress?.chain.id === chain.id ? this.progress.segmentsWritten : 0) + (d?.written ? 1 : 0);
    const knownAt = d?.knownAt ?? tip.at ?? this.progress?.knownAt;
    this.progress = {
      chain,
      ...(tip.key ? { key: tip.key } : {}),
      lastRevision: tip.lastRevision,
      ...(d ? { knownThrough: d.knownThrough } : {}),
      ...(knownAt ? { knownAt } : {}),
      segmentsWritten: written,
    };
    if (knownAt) recordDurable(this.cluster.name, knownAt);
    activityContext()?.heartbeat(this.progress);
  }

  private chainBreak(reason: 'compacted' | 'untrusted-tip' | 'etcd-replaced', chain: ChainRef, message: string): CaptureChangesResult {
    recordChainBreak(this.cluster.name);
    this.log.error(
      { chain: chain.id, reason, durableThrough: this.progress?.lastRevision, error: message },
      'continuous capture: the chain is broken; a full backup starts a new one',
    );
    return { outcome: 'needs-backup', reason, chain, message };
  }

  private readonly loadKey = (id: string) => loadEncryptionKey(this.deps.config, id);

  /** A retried attempt lists only the segments newer than the one its last heartbeat reported. */
  private resumeAfter(chain: ChainRef): string | undefined {
    const details = activityContext()?.info.heartbeatDetails as CaptureProgress | undefined;
    return details?.chain?.id === chain.id ? details.key : undefined;
  }

  private passedOverSaid = false;

  private async newestBase(): Promise<ChainRef | undefined> {
    const { newest, passedOver } = await newestTrustedBackup(this.s3, trustRulesFor(this.deps.config, this.cluster));
    if (passedOver.length && !this.passedOverSaid) {
      this.passedOverSaid = true;
      this.log.warn({ passedOver }, 'continuous capture: newer manifests passed over (not believable)');
    }
    if (!newest) return undefined;
    const base = { manifestKey: newest.manifestKey, revision: newest.manifest.etcd.revision };
    return { id: chainIdOf(base.manifestKey), base };
  }

  /** A full backup newer than the chain's base whose chain can start now (etcd still holds what came after it). */
  private async newerBaseThanChain(chain: ChainRef): Promise<ChainRef | undefined> {
    const newest = await this.newestBase();
    if (!newest || newest.id === chain.id || BigInt(newest.base.revision) <= BigInt(chain.base.revision)) return undefined;
    if (await this.etcdStillHasAfter(newest)) return newest;
    this.log.warn(
      { chain: chain.id, newer: newest.id },
      'continuous capture: etcd has compacted past the newer full backup, so its chain cannot start; the current chain goes on',
    );
    return undefined;
  }

  /**
   * Whether a watch from the base's revision + 1 would see every change: etcd has not compacted that revision. A read
   * at it answers "compacted" when it is gone, "future revision" when nothing was written since (both exact).
   */
  private async etcdStillHasAfter(c: ChainRef): Promise<boolean> {
    try {
      await getKey(this.client, '\0', { revision: addRevisions(c.base.revision, 1) });
      return true;
    } catch (err) {
      const message = (err as Error).message;
      if (/future revision/.test(message)) return true;
      if (/compacted/.test(message)) return false;
      throw err;
    }
  }
}
