import { revisionAsNumber } from '../etcd/revision';
import { Gauge } from 'prom-client';
import type { HealthReport } from '../health/types';
import type { RecoveryState } from '../health/recovery-state';
import { registry } from './registry';
import { drillMetrics } from './drill-metrics';

/**
 * Gauges set by the checkHealth activity, one series per cluster (label `cluster`), for Prometheus alert rules.
 * A value that a check could not read is removed rather than left stale; the backup figures keep their last value
 * when the bucket cannot be read (the last successful backup did not change).
 */
const gauge = <L extends string>(name: string, help: string, labelNames: L[]) =>
  new Gauge<L>({ name, help, labelNames, registers: [registry] });

export const healthGauges = {
  componentUp: gauge('lifeboat_component_up', 'Whether the control-plane component answered its health probe (1) or not (0).', [
    'cluster',
    'component',
  ]),
  etcdHasLeader: gauge('lifeboat_etcd_has_leader', 'Whether etcd on the control-plane node has a leader (1) or not (0).', ['cluster']),
  etcdDbSize: gauge('lifeboat_etcd_db_size_bytes', 'Size of the etcd database file in bytes.', ['cluster']),
  etcdDbQuota: gauge('lifeboat_etcd_db_quota_bytes', 'etcd backend quota in bytes (etcd_server_quota_backend_bytes).', ['cluster']),
  dataDirFree: gauge('lifeboat_etcd_data_dir_free_bytes', 'Free bytes on the filesystem of the etcd data dir.', ['cluster']),
  certificateExpiry: gauge('lifeboat_certificate_expiry_timestamp_seconds', 'When each kubeadm certificate expires (Unix time).', [
    'cluster',
    'certificate',
  ]),
  lastBackupTime: gauge(
    'lifeboat_last_successful_backup_timestamp_seconds',
    'When the newest complete backup in the bucket was taken (Unix time).',
    ['cluster'],
  ),
  lastBackupSize: gauge('lifeboat_last_successful_backup_size_bytes', 'Stored size in bytes of the newest complete backup snapshot.', [
    'cluster',
  ]),
  etcdRevision: gauge(
    'lifeboat_etcd_revision',
    "etcd's current revision: it only grows, so one below the newest backup's means etcd lost its data.",
    ['cluster'],
  ),
  lastBackupRevision: gauge('lifeboat_last_successful_backup_revision', 'etcd revision of the newest complete backup in the bucket.', [
    'cluster',
  ]),
  backupInterval: gauge(
    'lifeboat_backup_interval_seconds',
    "Time between the cluster's scheduled backups (its backup-<cluster> schedule).",
    ['cluster'],
  ),
  checkTime: gauge('lifeboat_health_check_timestamp_seconds', 'When the last health check of the cluster completed (Unix time).', [
    'cluster',
  ]),
  recoveryInProgress: gauge('lifeboat_recovery_in_progress', 'Whether a recovery (workflow recover-<cluster>) is running (1) or not (0).', [
    'cluster',
  ]),
  lastRecoveryDuration: gauge('lifeboat_last_recovery_duration_seconds', 'Duration of the last finished recovery run in seconds.', [
    'cluster',
  ]),
  lastRecoverySuccess: gauge(
    'lifeboat_last_recovery_success',
    'Whether the last finished recovery run restored the cluster (1) or not (0).',
    ['cluster'],
  ),
  lastRecoveryTime: gauge('lifeboat_last_recovery_timestamp_seconds', 'When the last finished recovery run ended (Unix time).', [
    'cluster',
  ]),
};

const seconds = (iso: string) => Date.parse(iso) / 1000;
const certificatesOf = new Map<string, Set<string>>();

function setOrRemove(g: Gauge<'cluster'>, cluster: string, value: number | undefined): void {
  if (value === undefined || Number.isNaN(value)) g.remove({ cluster });
  else g.set({ cluster }, value);
}

/** Sets every health gauge of the report's cluster from one completed check. */
export function recordHealth(report: HealthReport, completedAt = new Date()): void {
  const cluster = report.cluster;
  for (const c of report.components) healthGauges.componentUp.set({ cluster, component: c.component }, c.up ? 1 : 0);
  const etcdUp = report.components.find((c) => c.component === 'etcd')?.up ?? false;
  // etcd down: no leader that anyone can see (what etcdNoLeader-style rules expect).
  setOrRemove(
    healthGauges.etcdHasLeader,
    cluster,
    report.etcd?.hasLeader !== undefined ? (report.etcd.hasLeader ? 1 : 0) : etcdUp ? undefined : 0,
  );
  setOrRemove(healthGauges.etcdDbSize, cluster, report.etcd?.dbSizeBytes);
  setOrRemove(healthGauges.etcdDbQuota, cluster, report.etcd?.quotaBytes);
  setOrRemove(healthGauges.dataDirFree, cluster, report.disk?.freeBytes);
  setOrRemove(healthGauges.etcdRevision, cluster, report.etcd?.revision === undefined ? undefined : revisionAsNumber(report.etcd.revision));
  setOrRemove(healthGauges.backupInterval, cluster, report.backupIntervalSeconds);
  // Certificates that are gone lose their series; while the node cannot be read the last known expiries stay.
  if (report.certificates.length > 0) {
    const names = new Set(report.certificates.map((c) => c.name));
    for (const old of certificatesOf.get(cluster) ?? [])
      if (!names.has(old)) healthGauges.certificateExpiry.remove({ cluster, certificate: old });
    certificatesOf.set(cluster, names);
  }
  for (const c of report.certificates) healthGauges.certificateExpiry.set({ cluster, certificate: c.name }, seconds(c.notAfter));
  if (report.newestBackup) {
    healthGauges.lastBackupTime.set({ cluster }, seconds(report.newestBackup.created));
    healthGauges.lastBackupSize.set({ cluster }, report.newestBackup.sizeBytes);
    setOrRemove(
      healthGauges.lastBackupRevision,
      cluster,
      report.newestBackup.revision === undefined ? undefined : revisionAsNumber(report.newestBackup.revision),
    );
    if (report.newestBackup.lastPassedDrillAt) drillMetrics.lastSuccess.set({ cluster }, seconds(report.newestBackup.lastPassedDrillAt));
  }
  healthGauges.checkTime.set({ cluster }, completedAt.getTime() / 1000);
}

/** Sets the recovery gauges from Temporal's view of recover-<cluster>. */
export function recordRecovery(cluster: string, state: RecoveryState): void {
  healthGauges.recoveryInProgress.set({ cluster }, state.inProgress ? 1 : 0);
  if (state.never) {
    for (const g of [healthGauges.lastRecoveryDuration, healthGauges.lastRecoverySuccess, healthGauges.lastRecoveryTime])
      g.remove({ cluster });
    return;
  }
  if (!state.last) return; // running: the previous run's figures stay
  healthGauges.lastRecoveryDuration.set({ cluster }, state.last.durationSeconds);
  healthGauges.lastRecoverySuccess.set({ cluster }, state.last.success ? 1 : 0);
  healthGauges.lastRecoveryTime.set({ cluster }, seconds(state.last.closedAt));
}
