import { Command } from 'commander';
import { findCluster, loadConfig } from '../config/load';
import { isManagedSchedule, scheduleIdOf, syncBackupSchedules } from '../schedules/backup-schedules';
import { formatLastRun, lastRunOf } from '../schedules/last-result';
import { configFileOf } from './config';
import { openClient } from './temporal-client';
import { warnAboutEncryption } from './warnings';

async function withClient(
  cmd: Command,
  body: (c: Awaited<ReturnType<typeof openClient>>, config: Awaited<ReturnType<typeof loadConfig>>) => Promise<void>,
): Promise<void> {
  const config = await loadConfig(configFileOf(cmd));
  const c = await openClient(config);
  try {
    await body(c, config);
  } finally {
    await c.close();
  }
}

export function scheduleCommand(): Command {
  const schedule = new Command('schedule').description(
    'Temporal Schedules per cluster: backup-<cluster> (backups) and health-<cluster> (health checks)',
  );
  schedule
    .command('sync')
    .description(
      'create or update the backup and health schedules of every configured cluster, and start or stop its continuous capture (idempotent)',
    )
    .option(
      '--prune',
      "also delete the backup-*, health-* and drill-* schedules of clusters no longer in the config (only on this engine's task queues)",
    )
    .action(async (opts: { prune?: boolean }, cmd: Command) =>
      withClient(cmd, async ({ client }, config) => {
        config.clusters.forEach(warnAboutEncryption);
        const r = await syncBackupSchedules(client, config, { prune: opts.prune });
        for (const id of r.created) console.log(`created  ${id}`);
        for (const id of r.updated) console.log(`updated  ${id}`);
        for (const id of r.removed) console.log(`removed  ${id}`);
        for (const id of r.orphaned) console.log(`orphaned ${id} (its cluster is not in the config; --prune removes it)`);
        for (const f of r.foreign) console.log(`other    ${f.id} (runs on task queue ${f.taskQueue}, not this engine's: left alone)`);
        for (const id of r.captures.started) console.log(`started  ${id} (continuous backups)`);
        for (const id of r.captures.running) console.log(`running  ${id} (continuous backups)`);
        for (const id of r.captures.stopped) console.log(`stopped  ${id} (no backup.continuous for its cluster)`);
      }),
    );
  schedule
    .command('list')
    .description('list backup and health schedules with their state, next runs and how the last run ended')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client }) => {
        for await (const s of client.schedule.list()) {
          if (!isManagedSchedule(s.scheduleId)) continue;
          const d = await client.schedule.getHandle(s.scheduleId).describe();
          const next = d.info.nextActionTimes
            .slice(0, 2)
            .map((t) => t.toISOString())
            .join(', ');
          const last = formatLastRun(await lastRunOf(client, d));
          console.log(
            `${s.scheduleId}\t${d.state.paused ? `PAUSED (${d.state.note ?? ''})` : 'active'}\tnext: ${next || '-'}\tlast: ${last}`,
          );
        }
      }),
    );
  schedule
    .command('pause <cluster>')
    .description("pause the cluster's backups")
    .requiredOption('--reason <text>', 'why (shown in the Temporal UI and `schedule list`)')
    .action(async (cluster: string, opts: { reason: string }, cmd: Command) =>
      withClient(cmd, async ({ client }, config) => {
        findCluster(config, cluster);
        await client.schedule.getHandle(scheduleIdOf(cluster)).pause(opts.reason);
        console.log(`paused ${scheduleIdOf(cluster)}: ${opts.reason}`);
      }),
    );
  schedule
    .command('resume <cluster>')
    .description("resume the cluster's backups")
    .option('--reason <text>', 'why', 'resumed from the CLI')
    .action(async (cluster: string, opts: { reason: string }, cmd: Command) =>
      withClient(cmd, async ({ client }, config) => {
        findCluster(config, cluster);
        await client.schedule.getHandle(scheduleIdOf(cluster)).unpause(opts.reason);
        console.log(`resumed ${scheduleIdOf(cluster)}`);
      }),
    );
  schedule
    .command('trigger <cluster>')
    .description("run the cluster's scheduled backup now (skipped if one is running)")
    .action(async (cluster: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client }, config) => {
        findCluster(config, cluster);
        await client.schedule.getHandle(scheduleIdOf(cluster)).trigger();
        console.log(`triggered ${scheduleIdOf(cluster)}`);
      }),
    );
  return schedule;
}
