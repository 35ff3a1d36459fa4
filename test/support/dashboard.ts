import type { Dashboard, Panel, RowPanel } from '@grafana/grafana-foundation-sdk/dashboard';

/** One PromQL query of a panel of the dashboard. */
export interface PanelQuery {
  panel: string;
  refId: string;
  expr: string;
  /** A stat or bar gauge's instant query; otherwise a time series' range query. */
  instant: boolean;
}

/** Every query of every panel, rows' nested panels included. */
export function dashboardQueries(d: Dashboard): PanelQuery[] {
  const panels = (d.panels ?? []).flatMap((p) => [p, ...((p as RowPanel).panels ?? [])]) as Panel[];
  return panels.flatMap((p) =>
    ((p.targets ?? []) as { refId?: string; expr?: string; instant?: boolean }[]).map((t) => ({
      panel: p.title ?? '',
      refId: t.refId ?? '',
      expr: t.expr ?? '',
      instant: t.instant === true,
    })),
  );
}

/** Grafana's template and interval variables as a Prometheus query would see them once Grafana substituted them. */
export function substituteVariables(expr: string, vars: { cluster: string; range: string; rateInterval: string }): string {
  return expr.replaceAll('$__rate_interval', vars.rateInterval).replaceAll('$__range', vars.range).replaceAll('$cluster', vars.cluster);
}
