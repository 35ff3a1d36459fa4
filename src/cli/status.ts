import { Command } from 'commander';
import { loadEncryptionKey } from '../backup/keyring';
import { loadConfig } from '../config/load';
import { fleetStatus, type ClusterStatus, type FleetStatus } from '../status/fleet-status';
import { configFileOf } from './config';
import { age } from './health';
import { openClient } from './temporal-client';

const ago = (iso: string, now: Date) => `${age(Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000)))} ago`;

function row(s: ClusterStatus, now: Date): string[] {
  return [
    s.cluster,
    s.backup ? `${age(s.backup.ageSeconds)} old` : 'NONE',
    s.lastPassedDrillAt ? ago(s.lastPassedDrillAt, now) : 'never',
    !s.continuous ? '-' : s.continuous.ageSeconds !== undefined ? `${age(s.continuous.ageSeconds)}` : 'NO CHAIN',
    s.health ? `${s.health.outcome} ${ago(s.health.at, now)}` : 'unknown',
    s.recovery ? `RUNNING since ${ago(s.recovery.since, now)}` : '-',
  ];
}

/** The table `lifeboat status` prints: one line per cluster, then every problem by cluster. */
export function formatFleetStatus(f: FleetStatus, now: Date): string {
  const rows = [
    ['CLUSTER', 'NEWEST BACKUP', 'LAST DRILL PASSED', 'CONTINUOUS (NEWEST SEGMENT)', 'HEALTH', 'RECOVERY'],
    ...f.clusters.map((c) => row(c, now)),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]))).join('  '));
  const problems = f.clusters.flatMap((c) => c.problems.map((p) => `  ${c.cluster}: ${p}`));
  if (f.temporalProblem) lines.push('', `health and recoveries unknown: ${f.temporalProblem}`);
  if (problems.length) lines.push('', `problems (${problems.length}):`, ...problems);
  return lines.join('\n');
}

export function statusCommand(): Command {
  return new Command('status')
    .description(
      "every cluster at a glance: its newest backup's age, the last passed drill, continuous backups' newest segment, the newest health check and any running recovery; exit 1 when a cluster has a problem",
    )
    .option('--json', 'print the status as JSON (and nothing else)')
    .option('--concurrency <n>', 'clusters read from their buckets at once', '8')
    .action(async (opts: { json?: boolean; concurrency: string }, cmd: Command) => {
      const config = await loadConfig(configFileOf(cmd));
      const concurrency = Number(opts.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
        throw new Error(`--concurrency: expected a whole number from 1 to 64, got "${opts.concurrency}"`);
      // Temporal down is part of the answer, not a reason to print nothing: the buckets are still read.
      const temporal = await openClient(config).catch((err: Error) => err);
      const now = new Date();
      try {
        const status = await fleetStatus(config, {
          loadKey: (id) => loadEncryptionKey(config, id),
          client: temporal instanceof Error ? undefined : temporal.client,
          now,
          concurrency,
        });
        if (temporal instanceof Error) status.temporalProblem = `cannot connect to Temporal: ${temporal.message}`;
        console.log(opts.json ? JSON.stringify(status, null, 2) : formatFleetStatus(status, now));
        if (status.clusters.some((c) => c.problems.length)) process.exitCode = 1;
      } finally {
        if (!(temporal instanceof Error)) await temporal.close();
      }
    });
}
