import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';

/**
 * lifeboat's Grafana dashboard as code (Grafana's foundation SDK): `npm run dashboards:gen` writes it to
 * deploy/grafana/lifeboat.json, and a unit test fails when that file differs from what this code builds.
 * Every query reads a series the worker really exports at LIFEBOAT_METRICS_ADDRESS: the engine's gauges and
 * counters (src/metrics, src/alerts/metrics.ts), the counters workflow code adds through the Temporal runtime's
 * meter (lifeboat_backups_succeeded / _failed), and the runtime's own SDK metrics (temporal_*; durations in ms).
 * test/integration/grafana-dashboard.test.ts runs every one of them against a real Prometheus.
 */

/** The Prometheus data source, picked when the dashboard is imported (template variable `datasource`). */
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

/**
 * Counters of the Temporal runtime's exporter (lifeboat_backups_*, temporal_workflow_*): named without `_total`
 * today, but an exporter following Prometheus' naming adds it; the shipped alert rules match either name, and so
 * do the panels.
 */
const runtimeCounter = (name: string, labels = '') => `{__name__=~"${name}(_total)?"${labels ? `, ${labels}` : ''}}`;
const backupsSucceeded = (labels = '') => runtimeCounter('lifeboat_backups_succeeded', labels);
const backupsFailed = (labels = '') => runtimeCounter('lifeboat_backups_failed', labels);

/** A backup's interval: the schedule's when the worker exports it, otherwise 6 h, the default cron (as the alert rule). */
const BACKUP_INTERVAL =
  '(lifeboat_backup_interval_seconds or on (cluster) (0 * lifeboat_last_successful_backup_timestamp_seconds + 6 * 3600))';

const query = (expr: string, legend = '', instant = false, refId = 'A') => {
  const q = new prometheus.DataqueryBuilder()
    .refId(refId)
    .expr(expr)
    .legendFormat(legend || '__auto');
  return instant ? q.instant() : q.range();
};

const thresholds = (...steps: [number | null, string][]) =>
  new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps(steps.map(([value, color]) => ({ value, color })));

/** 1 and 0 as words (component up/down, drill passed/failed), green and red. */
const yesNo = (yes: string, no: string): dashboard.ValueMapping[] => [
  {
    type: dashboard.MappingType.ValueToText,
    options: { '1': { text: yes, color: 'green', index: 0 }, '0': { text: no, color: 'red', index: 1 } },
  },
];

const reduceLast = () => new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false);

let nextId = 1;
function ids<T extends { id(id: number): T }>(panel: T): T {
  return panel.id(nextId++);
}

/** A stat per series: the newest value of an instant query, one tile per cluster. */
function statPanel(title: string, description: string, expr: string, legend: string, unit: string, width = 6) {
  return ids(new stat.PanelBuilder())
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .withTarget(query(expr, legend, true))
    .unit(unit)
    .reduceOptions(reduceLast())
    .colorMode(common.BigValueColorMode.Background)
    .graphMode(common.BigValueGraphMode.None)
    .height(5)
    .span(width);
}

function timeseriesPanel(title: string, description: string, targets: [string, string][], unit: string, width = 12) {
  const panel = ids(new timeseries.PanelBuilder()).title(title).description(description).datasource(DATASOURCE).unit(unit);
  targets.forEach(([expr, legend], i) => panel.withTarget(query(expr, legend, false, String.fromCharCode(65 + i))));
  return panel.height(8).span(width);
}

function barPanel(title: string, description: string, expr: string, legend: string, unit: string, width = 12) {
  return ids(new bargauge.PanelBuilder())
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .withTarget(query(expr, legend, true))
    .unit(unit)
    .reduceOptions(reduceLast())
    .orientation(common.VizOrientation.Horizontal)
    .displayMode(common.BarGaugeDisplayMode.Basic)
    .height(8)
    .span(width);
}

function fleetOverview(d: dashboard.DashboardBuilder): void {
  d.withRow(ids(new dashboard.RowBuilder('Fleet overview')));
  d.withPanel(
    statPanel(
      'Newest backup age',
      'Time since the newest complete backup in the bucket was taken, per cluster (read by each health check).',
      'time() - lifeboat_last_successful_backup_timestamp_seconds',
      '{{cluster}}',
      's',
    ),
  );
  d.withPanel(
    statPanel(
      'Newest backup age, in backup intervals',
      'The newest backup’s age divided by the cluster’s backup interval: above 2 the LifeboatBackupTooOld alert fires.',
      `(time() - lifeboat_last_successful_backup_timestamp_seconds) / ${BACKUP_INTERVAL}`,
      '{{cluster}}',
      'none',
    ).thresholds(thresholds([null, 'green'], [1.5, 'orange'], [2, 'red'])),
  );
  d.withPanel(
    statPanel(
      'Backups failed since the worker started',
      'Backups that failed, per cluster and the step they failed at (counted by the backup workflow).',
      `sum by (cluster, step) (${backupsFailed()})`,
      '{{cluster}} at {{step}}',
      'none',
    )
      .thresholds(thresholds([null, 'green'], [1, 'red']))
      .noValue('none'),
  );
  d.withPanel(
    statPanel(
      'Control plane',
      'Lowest of the control-plane components’ health probes per cluster: Down when any component did not answer.',
      'min by (cluster) (lifeboat_component_up)',
      '{{cluster}}',
      'none',
    ).mappings(yesNo('Up', 'Down')),
  );
  d.withPanel(
    timeseriesPanel(
      'Backups per cluster',
      'Backups completed and failed, per cluster, in each interval.',
      [
        [`sum by (cluster) (increase(${backupsSucceeded()}[$__rate_interval]))`, '{{cluster}} completed'],
        [`sum by (cluster, step) (increase(${backupsFailed()}[$__rate_interval]))`, '{{cluster}} failed at {{step}}'],
      ],
      'none',
    ),
  );
  d.withPanel(
    ids(new statetimeline.PanelBuilder())
      .title('Control-plane components')
      .description('Each health check’s probe of each component (kube-apiserver, etcd, scheduler, controller-manager, node).')
      .datasource(DATASOURCE)
      .withTarget(query('lifeboat_component_up', '{{cluster}} {{component}}'))
      .mappings(yesNo('up', 'down'))
      .height(8)
      .span(12),
  );
  d.withPanel(
    statPanel(
      'Last drill',
      'Whether each cluster’s last restore drill passed.',
      'lifeboat_last_drill_success',
      '{{cluster}}',
      'none',
    ).mappings(yesNo('Passed', 'Failed')),
  );
  d.withPanel(
    statPanel(
      'Newest passed drill age',
      'Time since a restore drill last proved a backup restores (LifeboatNoSuccessfulDrill fires after 7 days).',
      'time() - lifeboat_last_successful_drill_timestamp_seconds',
      '{{cluster}}',
      's',
    ).thresholds(thresholds([null, 'green'], [7 * 86400, 'red'])),
  );
  d.withPanel(
    statPanel(
      'Drills failed since the worker started',
      'Restore drills that failed, per cluster.',
      'sum by (cluster) (lifeboat_drills_failed_total)',
      '{{cluster}}',
      'none',
    )
      .thresholds(thresholds([null, 'green'], [1, 'red']))
      .noValue('none'),
  );
  d.withPanel(
    statPanel(
      'Health check age',
      'Time since the last health check of each cluster completed (LifeboatHealthCheckStale fires after 10 minutes).',
      'time() - lifeboat_health_check_timestamp_seconds',
      '{{cluster}}',
      's',
    ).thresholds(thresholds([null, 'green'], [600, 'red'])),
  );
  d.withPanel(
    timeseriesPanel(
      'Continuous backup lag',
      'Continuous backups: seconds since the newest moment up to which all of etcd’s changes are durable in the bucket, the data an incident now would lose (LifeboatContinuousBackupLagging fires above 120 s).',
      [['lifeboat_continuous_lag_seconds', '{{cluster}}']],
      's',
    ),
  );
  d.withPanel(
    timeseriesPanel(
      'etcd database and disk',
      'etcd’s database against its quota and the free space of its data dir, per cluster.',
      [
        ['lifeboat_etcd_db_size_bytes / (lifeboat_etcd_db_quota_bytes > 0)', '{{cluster}} database / quota'],
        ['lifeboat_etcd_db_size_bytes / lifeboat_etcd_data_dir_free_bytes', '{{cluster}} database / free disk'],
      ],
      'percentunit',
    ),
  );
  d.withPanel(
    barPanel(
      'Soonest certificate expiry',
      'Time left until each cluster’s first kubeadm certificate expires.',
      'min by (cluster) (lifeboat_certificate_expiry_timestamp_seconds) - time()',
      '{{cluster}}',
      's',
    ).thresholds(thresholds([null, 'red'], [7 * 86400, 'orange'], [30 * 86400, 'green'])),
  );
  d.withPanel(
    statPanel(
      'Continuous chain breaks since the worker started',
      'Chains of continuous-backup segments that could not go on (each followed by a full backup and a new chain).',
      'sum by (cluster) (lifeboat_continuous_chain_breaks_total)',
      '{{cluster}}',
      'none',
      12,
    )
      .thresholds(thresholds([null, 'green'], [1, 'orange']))
      .noValue('none'),
  );
}

function oneCluster(d: dashboard.DashboardBuilder): void {
  const c = 'cluster="$cluster"';
  d.withRow(ids(new dashboard.RowBuilder('Cluster $cluster: backups and recoveries')));
  d.withPanel(
    statPanel(
      'Recovery point now',
      'What an incident now would lose: the continuous-backup lag when continuous backups run, otherwise the newest backup’s age.',
      `lifeboat_continuous_lag_seconds{${c}} or (time() - lifeboat_last_successful_backup_timestamp_seconds{${c}})`,
      'RPO',
      's',
    ),
  );
  d.withPanel(
    statPanel(
      'Last recovery took (RTO)',
      'Duration of the last finished recovery run, approval wait included.',
      `lifeboat_last_recovery_duration_seconds{${c}}`,
      'RTO',
      's',
    ),
  );
  d.withPanel(
    statPanel(
      'Last recovery',
      'Whether the last finished recovery restored the cluster; In progress while recover-<cluster> runs.',
      `lifeboat_last_recovery_success{${c}} + 2 * lifeboat_recovery_in_progress{${c}}`,
      'recovery',
      'none',
    ).mappings([
      {
        type: dashboard.MappingType.ValueToText,
        options: {
          '0': { text: 'Not restored', color: 'red', index: 0 },
          '1': { text: 'Restored', color: 'green', index: 1 },
          '2': { text: 'In progress', color: 'blue', index: 2 },
          '3': { text: 'In progress', color: 'blue', index: 3 },
        },
      },
    ]),
  );
  d.withPanel(
    statPanel(
      'Last recovery ended',
      'Time since the last recovery run ended.',
      `time() - lifeboat_last_recovery_timestamp_seconds{${c}}`,
      'ended',
      's',
    ),
  );
  d.withPanel(
    timeseriesPanel(
      'Backup age',
      'Age of the newest complete backup: a saw tooth whose teeth are the schedule’s interval.',
      [
        [`time() - lifeboat_last_successful_backup_timestamp_seconds{${c}}`, 'newest backup'],
        [`2 * lifeboat_backup_interval_seconds{${c}}`, 'alert threshold (2 intervals)'],
      ],
      's',
    ),
  );
  d.withPanel(
    timeseriesPanel(
      'Backups',
      'Backups of the cluster completed and failed (by the step that failed), in each interval.',
      [
        [`sum(increase(${backupsSucceeded(c)}[$__rate_interval]))`, 'completed'],
        [`sum by (step) (increase(${backupsFailed(c)}[$__rate_interval]))`, 'failed at {{step}}'],
      ],
      'none',
    ),
  );
  d.withPanel(
    timeseriesPanel(
      'Sizes',
      'The newest backup’s stored size against etcd’s database and the free space left beside it.',
      [
        [`lifeboat_last_successful_backup_size_bytes{${c}}`, 'newest backup (stored)'],
        [`lifeboat_etcd_db_size_bytes{${c}}`, 'etcd database'],
        [`lifeboat_etcd_data_dir_free_bytes{${c}}`, 'free on etcd’s disk'],
      ],
      'bytes',
    ),
  );
  d.withPanel(
    timeseriesPanel(
      'etcd revision and the newest backup’s',
      'etcd’s revision only grows: below the newest backup’s means etcd lost its data (LifeboatEtcdDataLost).',
      [
        [`lifeboat_etcd_revision{${c}}`, 'etcd'],
        [`lifeboat_last_successful_backup_revision{${c}}`, 'newest backup'],
      ],
      'none',
    ),
  );
  // The runtime's activity metrics carry the workflow and activity type, not the cluster: these panels are the worker's.
  // Means since the worker started (the histograms' sum / count): a histogram first appears with its first run counted,
  // which increase() over the range would not see.
  const mean = (metric: string, selector: string, by: string) =>
    `sum by (${by}) (${metric}_sum{${selector}}) / sum by (${by}) (${metric}_count{${selector}} > 0)`;
  d.withPanel(
    barPanel(
      'Backup steps: mean duration (all clusters of the worker)',
      'Mean duration of each backup step (activity) since the worker started, from the Temporal runtime’s metrics, which do not carry the cluster.',
      mean('temporal_activity_execution_latency', 'workflow_type="backupCluster"', 'activity_type'),
      '{{activity_type}}',
      'ms',
    ),
  );
  d.withPanel(
    barPanel(
      'Recovery steps: mean duration (all clusters of the worker)',
      'Mean duration of each recovery step (activity) since the worker started; the step timeline of one run is in its recovery report.',
      mean('temporal_activity_execution_latency', 'workflow_type="recoverCluster"', 'activity_type'),
      '{{activity_type}}',
      'ms',
    ),
  );
  d.withPanel(
    barPanel(
      'Runs: mean duration (all clusters of the worker)',
      'Mean time from start to end of the worker’s backup, recovery and drill runs since the worker started.',
      mean('temporal_workflow_endtoend_latency', 'workflow_type=~"backupCluster|recoverCluster|drillRestore"', 'workflow_type'),
      '{{workflow_type}}',
      'ms',
      24,
    ),
  );
}

const RESPONSES = 'workflow_type=~"respondToAlert|recoverCluster"';

function alertPath(d: dashboard.DashboardBuilder): void {
  d.withRow(ids(new dashboard.RowBuilder('Alert path')));
  d.withPanel(
    timeseriesPanel(
      'Alerts received, by what became of them',
      'Alerts Alertmanager posted to the worker’s receiver: started-or-joined a response, resolved-signalled, ignored, malformed, unauthorized, temporal-unavailable.',
      [['sum by (outcome) (increase(lifeboat_alerts_received_total[$__rate_interval]))', '{{outcome}}']],
      'none',
    ),
  );
  d.withPanel(
    barPanel(
      'Alerts received since the worker started',
      'Every alert the receiver was sent, by outcome.',
      'sum by (outcome) (lifeboat_alerts_received_total)',
      '{{outcome}}',
      'none',
    ),
  );
  d.withPanel(
    timeseriesPanel(
      'Responses and recoveries run',
      'Alert responses (respondToAlert) and recoveries (recoverCluster) that ended, completed or failed, on this worker.',
      [
        [
          `sum by (workflow_type) (increase(${runtimeCounter('temporal_workflow_completed', RESPONSES)}[$__rate_interval]))`,
          '{{workflow_type}} completed',
        ],
        [
          `sum by (workflow_type) (increase(${runtimeCounter('temporal_workflow_failed', RESPONSES)}[$__rate_interval]))`,
          '{{workflow_type}} failed',
        ],
      ],
      'none',
    ),
  );
  d.withPanel(
    statPanel(
      'Recoveries in progress',
      'Clusters whose recover-<cluster> workflow is running (waiting for approval, or restoring).',
      'lifeboat_recovery_in_progress',
      '{{cluster}}',
      'none',
      12,
    ).mappings([
      {
        type: dashboard.MappingType.ValueToText,
        options: { '0': { text: 'No', color: 'green', index: 0 }, '1': { text: 'Recovering', color: 'blue', index: 1 } },
      },
    ]),
  );
}

/** The dashboard as Grafana's JSON model. Deterministic: the same code builds the same JSON. */
export function lifeboatDashboard(): dashboard.Dashboard {
  nextId = 1;
  const d = new dashboard.DashboardBuilder('lifeboat')
    .uid('lifeboat')
    .description('Backups, recoveries, drills and the alert path of the clusters a lifeboat worker looks after.')
    .tags(['lifeboat', 'etcd', 'kubernetes', 'disaster-recovery'])
    .editable()
    .refresh('1m')
    .time({ from: 'now-24h', to: 'now' })
    .timezone('browser')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .withVariable(new dashboard.DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'))
    .withVariable(
      new dashboard.QueryVariableBuilder('cluster')
        .label('Cluster')
        .datasource(DATASOURCE)
        .query('label_values(lifeboat_health_check_timestamp_seconds, cluster)')
        .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
        .sort(dashboard.VariableSort.AlphabeticalAsc),
    );
  fleetOverview(d);
  oneCluster(d);
  alertPath(d);
  return d.build();
}

/** The file's text: two-space JSON and a final newline, as prettier leaves it. */
export function lifeboatDashboardJson(): string {
  return `${JSON.stringify(lifeboatDashboard(), null, 2)}\n`;
}
