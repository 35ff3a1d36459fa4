import { alertsReference } from './alerts-reference';
import { cliReference } from './cli-reference';
import { configurationReference } from './config-reference';
import { metricsReference } from './metrics-reference';

export interface GeneratedPage {
  /** Relative to the repository's root. */
  path: string;
  content: string;
}

/**
 * The reference pages generated from the code (`npm run docs:gen` writes them; test/unit/docs.test.ts fails when a
 * committed one differs). Deterministic: nothing here reads the clock, the environment or the machine.
 */
export async function generatedPages(repoRoot: string): Promise<GeneratedPage[]> {
  return [
    { path: 'docs/reference/configuration.md', content: configurationReference() },
    { path: 'docs/reference/cli.md', content: cliReference() },
    { path: 'docs/reference/metrics.md', content: await metricsReference() },
    { path: 'docs/reference/alerts.md', content: await alertsReference(repoRoot) },
  ];
}
