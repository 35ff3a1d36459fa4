import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { overrideFor } from '../../sandbox/prometheus';
import { DEFAULT_ALERT_TRIGGERS } from '../../src/config/schema';

/**
 * The shipped alert rules (deploy/prometheus): promtool's own checks and unit tests, the PrometheusRule generated
 * from the same file, and the conventions the alert receiver relies on. promtool comes from Debian's `prometheus`
 * package, which scripts/servers.sh installs.
 */

const repoRoot = resolve(__dirname, '..', '..');
const dir = join(repoRoot, 'deploy', 'prometheus');
const rulesFile = join(dir, 'lifeboat.rules.yml');
const testsFile = join(dir, 'lifeboat.rules.test.yml');
const prometheusRuleFile = join(dir, 'lifeboat.prometheusrule.yaml');
const RUNBOOK = 'https://github.com/lifeboat-dr/lifeboat/blob/main/docs/alerts.md';

const ALERTS = [
  'LifeboatControlPlaneComponentDown',
  'LifeboatNodeUnreachable',
  'LifeboatEtcdNoLeader',
  'LifeboatEtcdDataLost',
  'LifeboatEtcdDatabaseQuotaLow',
  'LifeboatEtcdDiskLow',
  'LifeboatBackupTooOld',
  'LifeboatBackupFailed',
  'LifeboatCertificateExpiresIn30Days',
  'LifeboatCertificateExpiresIn7Days',
  'LifeboatRecoveryFailed',
  'LifeboatHealthCheckStale',
  // Restore drills: not response triggers (nothing to restore), their runbook is docs/drills.md.
  'LifeboatDrillFailed',
  'LifeboatNoSuccessfulDrill',
  // Continuous backups: not response triggers either; their runbook is docs/continuous-backups.md.
  'LifeboatContinuousBackupLagging',
  'LifeboatContinuousChainBroken',
  // The engine itself (group lifeboat-engine): on the scrape, so they fire when the engine's own series are gone.
  'LifeboatEngineDown',
  'LifeboatEngineAbsent',
];

/** The group that watches the engine's scrape: the only rules allowed absent(), and the only ones without `cluster`. */
const ENGINE_GROUP = 'lifeboat-engine';

/** The docs page each alert's runbook_url points at. */
const runbookOf = (alert: string) =>
  alert.includes('Drill')
    ? RUNBOOK.replace(/alerts\.md$/, 'drills.md')
    : alert.includes('Continuous')
      ? RUNBOOK.replace(/alerts\.md$/, 'continuous-backups.md')
      : RUNBOOK;

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}

function run(file: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolvePromise, reject) => {
    execFile(file, args, { cwd: repoRoot, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`cannot run ${file}: ${err.message} (install Debian's prometheus package: scripts/servers.sh does)`));
        return;
      }
      resolvePromise({ code: err ? (err.code as number) : 0, output: `${stdout}${stderr}` });
    });
  });
}

async function rules(): Promise<Rule[]> {
  return (parse(await readFile(rulesFile, 'utf8')) as RuleFile).groups.flatMap((g) => g.rules);
}

async function groups(): Promise<RuleFile['groups']> {
  return (parse(await readFile(rulesFile, 'utf8')) as RuleFile).groups;
}

describe('shipped alert rules (deploy/prometheus)', () => {
  it('pass promtool check rules', async () => {
    const { code, output } = await run('promtool', ['check', 'rules', rulesFile]);
    expect(output).toContain(`SUCCESS: ${ALERTS.length} rules found`);
    expect(code).toBe(0);
  });

  it('pass their promtool unit tests', async () => {
    const { code, output } = await run('promtool', ['test', 'rules', testsFile]);
    if (code !== 0) throw new Error(`promtool test rules ${testsFile} failed:\n${output}`);
    expect(output).toContain('SUCCESS');
  });

  it('are exactly the alerts the receiver knows, each with severity, summary, description and runbook', async () => {
    const all = await rules();
    expect(all.map((r) => r.alert)).toEqual(ALERTS);
    for (const rule of all) {
      expect([rule.alert, rule.labels?.severity]).toEqual([rule.alert, expect.stringMatching(/^(warning|critical)$/)]);
      expect(Object.keys(rule.annotations ?? {}).sort()).toEqual(['description', 'runbook_url', 'summary']);
      expect(rule.annotations!.runbook_url).toBe(runbookOf(rule.alert!));
    }
  });

  it('use absent() only on the engine itself, and watch its scrape job, so they fire when the engine is gone', async () => {
    const all = await groups();
    for (const group of all.filter((g) => g.name !== ENGINE_GROUP)) {
      for (const rule of group.rules) {
        // absent() cannot say which cluster is missing and stays silent while a series is still exported with 0.
        expect([rule.alert, rule.expr]).toEqual([rule.alert, expect.not.stringMatching(/\babsent(_over_time)?\s*\(/)]);
      }
    }
    const engine = all.find((g) => g.name === ENGINE_GROUP)?.rules ?? [];
    expect(engine.map((r) => [r.alert, r.expr.trim()])).toEqual([
      ['LifeboatEngineDown', 'up{job="lifeboat"} == 0'],
      ['LifeboatEngineAbsent', 'absent(lifeboat_build_info{job="lifeboat"})'],
    ]);
    // Production-sane waits in the shipped file (a test may shorten its own copy): a restart must not page anyone.
    expect(engine.map((r) => r.for)).toEqual(['5m', '10m']);
    // Neither may start a response: the receiver that would act on it is the engine that is down.
    for (const rule of engine) expect(DEFAULT_ALERT_TRIGGERS).not.toContain(rule.alert);
  });

  it('each have a firing and a not-firing case in the promtool tests', async () => {
    const tests = parse(await readFile(testsFile, 'utf8')) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
    };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of ALERTS) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect([alert, mine.some((c) => (c.exp_alerts ?? []).length > 0)]).toEqual([alert, true]);
      expect([alert, mine.some((c) => (c.exp_alerts ?? []).length === 0)]).toEqual([alert, true]);
    }
  });

  it('match the PrometheusRule manifest generated from them (scripts/render-rules.js)', async () => {
    const source = parse(await readFile(rulesFile, 'utf8')) as RuleFile;
    const manifest = parse(await readFile(prometheusRuleFile, 'utf8')) as {
      apiVersion: string;
      kind: string;
      metadata: { name: string; labels: Record<string, string> };
      spec: RuleFile;
    };
    expect(manifest.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(manifest.kind).toBe('PrometheusRule');
    expect(manifest.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack', prometheus: 'k8s', role: 'alert-rules' });
    expect(manifest.spec).toEqual(source);
    // The byte-for-byte check: the committed manifest is what the script renders now.
    const check = await run(process.execPath, [join(repoRoot, 'scripts', 'render-rules.js'), '--check']);
    expect(check.output).toBe('');
    expect(check.code).toBe(0);
  });

  it('take a shorter `for` for tests (the harness rewrites a copy, parsed as YAML)', async () => {
    const text = await readFile(rulesFile, 'utf8');
    const { text: copy, rules: count } = overrideFor(text, '2s');
    expect(count).toBe(ALERTS.length);
    const before = (parse(text) as RuleFile).groups.flatMap((g) => g.rules);
    const after = (parse(copy) as RuleFile).groups.flatMap((g) => g.rules);
    expect(after.map((r) => r.for)).toEqual(before.map((r) => (r.for === undefined ? undefined : '2s')));
    expect(after.map(({ for: _for, ...rest }) => rest)).toEqual(before.map(({ for: _for, ...rest }) => rest));
    const tmp = await mkdtemp(join(tmpdir(), 'lifeboat-rules-'));
    try {
      await writeFile(join(tmp, 'rules.yml'), copy);
      const { code, output } = await run('promtool', ['check', 'rules', join(tmp, 'rules.yml')]);
      expect(output).toContain('SUCCESS');
      expect(code).toBe(0);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
