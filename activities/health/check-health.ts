import { loadEncryptionKey } from '../../src/backup/keyring';
import { findCluster } from '../../src/config/load';
import { checkClusterHealth } from '../../src/health/check';
import { recoveryState } from '../../src/health/recovery-state';
import { backupIntervalSeconds } from '../../src/health/backup-interval';
import type { HealthReport } from '../../src/health/types';

export type { Component, ComponentHealth, HealthReport } from '../../src/health/types';
import { recordHealth, recordRecovery } from '../../src/metrics/health-metrics';
import { durationMs } from '../../src/schedules/backup-schedules';
import type { ActivityDeps } from '../deps';
import { cancellationSignal } from '../heartbeat';

export interface CheckHealthInput {
  cluster: string;
  /** Default: the cluster's first node. */
  node?: string;
  /** Each probe's timeout; default the cluster's health.timeout (5 s). */
  timeoutSeconds?: number;
}

/**
 * Probes a cluster's control plane (API server, etcd, scheduler, controller-manager, the node; disk, certificates,
 * newest backup) and sets the lifeboat_* health gauges, plus the recovery gauges from Temporal's own view of
 * recover-<cluster>. A component that is down or a node that cannot be reached is in the report, never thrown;
 * only an unknown cluster or node fails the activity (non-retryable).
 */
export function checkHealth(deps: ActivityDeps) {
  return async (input: CheckHealthInput): Promise<HealthReport> => {
    const cluster = findCluster(deps.config, input.cluster);
    const timeoutMs =
      input.timeoutSeconds !== undefined && input.timeoutSeconds > 0
        ? input.timeoutSeconds * 1000
        : durationMs(cluster.health.timeout) || 5000;
    const [report, recovery, interval] = await Promise.all([
      checkClusterHealth(cluster, {
        loadKey: (id) => loadEncryptionKey(deps.config, id),
        node: input.node,
        timeoutMs,
        signal: cancellationSignal(),
      }),
      deps.client ? recoveryState(deps.client, cluster.name, timeoutMs).catch((err: Error) => err) : undefined,
      deps.client ? backupIntervalSeconds(deps.client, cluster.name, timeoutMs).catch(() => undefined) : undefined,
    ]);
    if (interval !== undefined) report.backupIntervalSeconds = interval;
    if (recovery instanceof Error) {
      const why = `cannot describe recover-${cluster.name} in Temporal: ${recovery.message}`;
      report.problems.push(`recovery state: ${why}`);
      report.unread = { ...report.unread, recovery: why };
    } else if (recovery) {
      recordRecovery(cluster.name, recovery);
      report.recovery = {
        inProgress: recovery.inProgress,
        ...(recovery.lastRestore
          ? { lastSuccessAt: recovery.lastRestore.closedAt, restoredRevision: recovery.lastRestore.restoredRevision }
          : {}),
      };
    }
    recordHealth(report);
    const down = report.components.filter((c) => !c.up).map((c) => c.component);
    deps.logger.info(
      { cluster: cluster.name, node: report.node, down, problems: report.problems.length },
      down.length ? 'health check: components down' : 'health check: all up',
    );
    return report;
  };
}
