import type { Metric } from 'prom-client';
import { registry } from '../metrics/registry';
// Each module registers its metrics when it is loaded: load them all, so the page lists every one.
import '../metrics/health-metrics';
import '../metrics/drill-metrics';
import '../metrics/continuous-metrics';
import '../metrics/build-info';
import { code, page, table } from './markdown';

/** docs/reference/metrics.md: the engine's metrics as the registry holds them (name, type, help, labels). */
export async function metricsReference(): Promise<string> {
  const metrics = (await registry.getMetricsAsJSON()).sort((a, b) => a.name.localeCompare(b.name));
  const rows = metrics.map((m) => {
    // prom-client keeps a metric's label names on the instance (not in its JSON); its typings leave the field out.
    const metric: (Metric & { labelNames?: string[] }) | undefined = registry.getSingleMetric(m.name);
    const labels = metric?.labelNames ?? [];
    return [code(m.name), String(m.type), labels.map(code).join(', '), m.help];
  });
  return page(
    'Metrics reference',
    "The engine's own metrics, served at `GET /metrics` when the worker (or `npm start`) runs with `LIFEBOAT_METRICS_ADDRESS=0.0.0.0:9464`, followed by the Temporal runtime's (the SDK's metrics and `lifeboat_backups_failed`, counted by the backup workflow). What they mean for the alerts: [Alerts and automated recovery](../alerts.md).",
    'the prom-client registry in src/metrics/',
    table(['metric', 'type', 'labels', 'help'], rows),
  );
}
