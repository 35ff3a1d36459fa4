import { Counter, Gauge } from 'prom-client';
import { registry } from './registry';

/**
 * Continuous backups' recovery point, per cluster, as the capture activity on this worker knows it: the moment up to
 * which every revision etcd had is durable in the bucket. A quiet cluster is not lagging: the capture asks etcd for
 * watch progress, and etcd's answer (nothing else changed up to revision R) moves the moment on without a segment.
 * The gauge is computed at each scrape (now minus that moment), so a capture that stopped making progress (the store
 * down, the watch stuck, the activity gone) shows a lag that keeps growing instead of a frozen value.
 */
const durableAt = new Map<string, number>();

export const continuousMetrics = {
  lag: new Gauge({
    name: 'lifeboat_continuous_lag_seconds',
    help: 'Seconds since the newest moment up to which all of etcd’s changes are durable in the bucket (continuous backups): the recovery point an incident now would lose.',
    labelNames: ['cluster'],
    registers: [registry],
    collect() {
      const now = Date.now();
      for (const [cluster, at] of durableAt) this.set({ cluster }, Math.max(0, (now - at) / 1000));
    },
  }),
  chainBreaks: new Counter({
    name: 'lifeboat_continuous_chain_breaks_total',
    help: 'Chains of segments that could not go on (etcd compacted past the capture, or the chain’s newest segment is not believed): each one is followed by a full backup and a new chain.',
    labelNames: ['cluster'],
    registers: [registry],
  }),
};

/** Everything etcd had at `at` is durable. Never moves back (a retried attempt may report an older moment). */
export function recordDurable(cluster: string, at: Date | string): void {
  const t = typeof at === 'string' ? Date.parse(at) : at.getTime();
  if (Number.isFinite(t) && t > (durableAt.get(cluster) ?? -Infinity)) durableAt.set(cluster, t);
}

export function recordChainBreak(cluster: string): void {
  continuousMetrics.chainBreaks.inc({ cluster });
}

/** A cluster whose capture was stopped (continuous backups turned off): no lag to report. */
export function forgetCluster(cluster: string): void {
  durableAt.delete(cluster);
  continuousMetrics.lag.remove({ cluster });
}
