import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { code, page, table } from './markdown';

interface RuleFile {
  groups: {
    name: string;
    rules: { alert?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[];
  }[];
}

export const RULES_FILE = 'deploy/prometheus/lifeboat.rules.yml';

/** docs/reference/alerts.md: every alert of the shipped rule file (alert, expr, for, severity, summary). */
export async function alertsReference(repoRoot: string): Promise<string> {
  const rules = parse(await readFile(join(repoRoot, RULES_FILE), 'utf8')) as RuleFile;
  const rows = rules.groups.flatMap((g) =>
    g.rules
      .filter((r) => r.alert)
      .map((r) => [code(r.alert!), code(r.expr.trim()), r.for ?? '', r.labels?.severity ?? '', r.annotations?.summary ?? '']),
  );
  return page(
    'Alert rules reference',
    `Every alert of the shipped Prometheus rules, \`${RULES_FILE}\` (and its PrometheusRule twin). What fires them, what happens and what to do: [Alert rules](../alerts.md#alert-rules).`,
    RULES_FILE,
    table(['alert', 'expr', 'for', 'severity', 'summary'], rows),
  );
}
