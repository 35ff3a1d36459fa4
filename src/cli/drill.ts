import { Command } from 'commander';
import { findCluster, loadConfig } from '../config/load';
import { drillInputProblems, type DrillRestoreInput } from '../../workflows/drill-input';
import { configFileOf } from './config';
import { openClient } from './temporal-client';
import { siteTaskQueue } from '../temporal/connection';
import { drillRestore } from '../../workflows';
import { runResult } from './run-result';

export function drillCommand(): Command {
  const drill = new Command('drill').description('restore drills: prove on the worker that a backup really restores');
  drill
    .command('now <cluster>')
    .description('drill a backup of the cluster now (workflow drill-<cluster>-manual-<time>)')
    .option('--snapshot <key>', 'a backup key from `backup list`, or "latest" (the newest a recovery could use)', 'latest')
    .option('--wait', 'wait for the result and print it (exit 1 when the drill fails)')
    .option('--reason <text>', 'why this drill runs', 'manual')
    .action(async (clusterName: string, opts: { snapshot: string; wait?: boolean; reason: string }, cmd: Command) => {
      const config = await loadConfig(configFileOf(cmd));
      const cluster = findCluster(config, clusterName);
      const input: DrillRestoreInput = { cluster: cluster.name, snapshot: opts.snapshot, reason: opts.reason };
      const problems = drillInputProblems(input);
      if (problems.length) throw new Error(`invalid input:\n  ${problems.join('\n  ')}`);
      const { client, taskQueue, close } = await openClient(config);
      try {
        const workflowId = `drill-${cluster.name}-manual-${new Date().toISOString().replace(/[:.]/g, '')}`;
        const handle = await client.workflow.start(drillRestore, {
          taskQueue: siteTaskQueue(taskQueue, cluster.site),
          workflowId,
          args: [input],
        });
        console.log(`started ${workflowId}`);
        if (!opts.wait) return;
        const r = await runResult('drill', handle.result());
        console.log(
          `drill of ${r.manifestKey}: passed in ${r.durationSeconds} s (counted through ${r.countedThrough === 'api' ? 'a throwaway kube-apiserver' : 'etcd only'})`,
        );
        for (const c of r.checks) console.log(`  ok  ${c}`);
        for (const p of r.passedOver) console.log(`  passed over ${p.manifestKey}: ${p.reason}`);
        if (r.reportKey) console.log(`  report: ${r.reportKey}`);
      } finally {
        await close();
      }
    });
  return drill;
}
