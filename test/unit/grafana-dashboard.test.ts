import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { lifeboatDashboard, lifeboatDashboardJson } from '../../deploy/grafana/lifeboat-dashboard';
import { dashboardQueries } from '../support/dashboard';

/** The dashboard (deploy/grafana): the committed JSON is what the code builds, and its queries read real metrics. */

const repoRoot = resolve(__dirname, '..', '..');
const jsonFile = join(repoRoot, 'deploy', 'grafana', 'lifeboat.json');

describe('Grafana dashboard (deploy/grafana/lifeboat.json)', () => {
  it('the committed JSON is what deploy/grafana/lifeboat-dashboard.ts generates', () => {
    const committed = readFileSync(jsonFile, 'utf8');
    if (committed !== lifeboatDashboardJson())
      throw new Error(
        `${jsonFile} differs from what deploy/grafana/lifeboat-dashboard.ts builds: run \`npm run dashboards:gen\` and commit it`,
      );
    expect(lifeboatDashboardJson()).toBe(lifeboatDashboardJson()); // deterministic: a second build is the same text
  });

  it('panel ids are unique and every panel reads the chosen Prometheus', () => {
    const d = lifeboatDashboard();
    const ids = (d.panels ?? []).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of d.panels ?? [])
      if (p.type !== 'row') expect(p).toMatchObject({ datasource: { type: 'prometheus', uid: '${datasource}' } });
  });

  it('every lifeboat_* metric a query reads is one the worker exports (named in src/, workflows/ or activities/)', () => {
    const queries = dashboardQueries(lifeboatDashboard());
    expect(queries.length).toBeGreaterThan(30);
    const exported = new Set(
      execFileSync('grep', ['-rhoE', `['"\`]lifeboat_[a-z_]+`, 'src', 'workflows', 'activities'], { cwd: repoRoot, encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map((s) => s.slice(1)),
    );
    expect(exported.has('lifeboat_last_successful_backup_timestamp_seconds')).toBe(true);
    const read = new Set(queries.flatMap((q) => [...q.expr.matchAll(/lifeboat_[a-z_]+/g)].map((m) => m[0])));
    // Counters of the Temporal runtime's meter are matched with and without the `_total` it may add.
    const unknown = [...read].filter((name) => !exported.has(name) && !exported.has(name.replace(/_total$/, '')));
    expect(unknown).toEqual([]);
    expect(read.size).toBeGreaterThan(20);
  });
});
