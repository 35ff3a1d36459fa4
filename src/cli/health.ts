import { loadEncryptionKey } from '../backup/keyring';
import { Command } from 'commander';
import { findCluster, loadConfig } from '../config/load';
import { checkClusterHealth } from '../health/check';
import type { HealthReport } from '../health/types';
import { configFileOf } from './config';

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
const gib = (n: number) => `${(n / 1073741824).toFixed(1)} GiB`;
const human = (n: number) => (n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : n < 1073741824 ? mib(n) : gib(n));

/** A duration in seconds as people read it: seconds, minutes, hours or days. */
export function age(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

/** The report as the terminal table `lifeboat health` prints. */
export function formatHealthReport(r: HealthReport, now = new Date()): string {
  const lines: string[] = [`cluster ${r.cluster}, node ${r.node}, checked ${r.checkedAt}`, ''];
  const width = Math.max(...r.components.map((c) => c.component.length));
  for (const c of r.components) lines.push(`  ${c.component.padEnd(width)}  ${(c.up ? 'up' : 'DOWN').padEnd(4)}  ${c.detail}`);
  lines.push('');
  if (r.etcd) {
    const e = r.etcd;
    const leader = e.hasLeader === undefined ? 'leader unknown' : e.hasLeader ? 'has a leader' : 'NO LEADER';
    const size =
      e.dbSizeBytes !== undefined
        ? `db ${mib(e.dbSizeBytes)}${e.quotaBytes ? ` of ${mib(e.quotaBytes)} quota (${((100 * e.dbSizeBytes) / e.quotaBytes).toFixed(1)}%)` : ''}`
        : 'db size unknown';
    lines.push(`etcd:         ${leader}, ${size}`);
  } else {
    lines.push('etcd:         unknown');
  }
  lines.push(
    r.disk ? `disk:         ${gib(r.disk.freeBytes)} free of ${gib(r.disk.totalBytes)} (${r.disk.path})` : 'disk:         unknown',
  );
  if (r.newestBackup)
    lines.push(
      `backup:       newest ${age(r.newestBackup.ageSeconds)} old (${r.newestBackup.created}, ${human(r.newestBackup.sizeBytes)}): ${r.newestBackup.key}`,
    );
  else lines.push('backup:       none found');
  if (r.continuous) {
    const c = r.continuous;
    lines.push(
      c.chain
        ? `continuous:   ${c.lagSeconds ? `${age(c.lagSeconds)} behind${c.lagIsUpperBound ? ' at most' : ''}` : 'caught up'}: durable through revision ${c.durableThrough} (seen ${c.at}), chain ${c.chain}`
        : `continuous:   ${c.problem}`,
    );
  }
  if (r.certificates.length) {
    lines.push('certificates (soonest first):');
    const sorted = [...r.certificates].sort((a, b) => a.notAfter.localeCompare(b.notAfter));
    const w = Math.max(...sorted.map((c) => c.name.length));
    for (const c of sorted) {
      const days = Math.floor((Date.parse(c.notAfter) - now.getTime()) / 86_400_000);
      lines.push(`  ${c.name.padEnd(w)}  ${c.notAfter.slice(0, 10)}  ${days < 0 ? 'EXPIRED' : `${days} days left`}`);
    }
  } else {
    lines.push('certificates: unknown');
  }
  if (r.problems.length) {
    lines.push('', `problems (${r.problems.length}):`);
    for (const p of r.problems) lines.push(`  - ${p}`);
  }
  return lines.join('\n');
}

export function healthCommand(): Command {
  return new Command('health')
    .description("probe a cluster's control plane now, from here (no Temporal needed): exit 1 when a component is down")
    .argument('<cluster>', 'cluster name from the config')
    .option('--node <name>', 'node to probe (default: the first node)')
    .option('--timeout <seconds>', "timeout of each probe (default: the cluster's health.timeout)")
    .option('--json', 'print the report as JSON')
    .action(async (clusterName: string, opts: { node?: string; timeout?: string; json?: boolean }, cmd: Command) => {
      const config = await loadConfig(configFileOf(cmd));
      const cluster = findCluster(config, clusterName);
      const seconds = opts.timeout !== undefined ? Number(opts.timeout) : undefined;
      if (seconds !== undefined && !(seconds > 0)) throw new Error(`--timeout: expected a number of seconds, got "${opts.timeout}"`);
      const report = await checkClusterHealth(cluster, {
        loadKey: (id) => loadEncryptionKey(config, id),
        node: opts.node,
        timeoutMs: seconds ? seconds * 1000 : undefined,
      });
      console.log(opts.json ? JSON.stringify(report, null, 2) : formatHealthReport(report));
      if (report.components.some((c) => !c.up)) process.exitCode = 1;
    });
}
