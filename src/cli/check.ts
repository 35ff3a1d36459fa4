import { Command } from 'commander';
import { TimeoutFailure, WorkflowFailedError } from '@temporalio/client';
import { findCluster, loadConfig } from '../config/load';
import { runMetadata } from '../temporal/run-metadata';
import { checkClusterHealth } from '../../workflows';
import { configFileOf } from './config';
import { formatHealthReport } from './health';
import { openClient } from './temporal-client';
import { siteTaskQueue } from '../temporal/connection';
import { runResult } from './run-result';
import { cliUser } from './user';

/**
 * `lifeboat check <cluster>`: one health check run by the engine (the checkClusterHealth workflow the health-<cluster>
 * schedule runs), so it proves what `lifeboat health` from a laptop cannot: that the worker reaches the node with its
 * pinned host key, the bucket with its credentials, and Temporal. Unhealthy (any problem) exits 1, as the run's
 * LifeboatOutcome says.
 */
export function checkCommand(): Command {
  return new Command('check')
    .description(
      'check a cluster through the engine: a worker runs one health check (workflow health-<cluster>-manual-<time>) and its report is printed; exit 1 when the cluster is unhealthy',
    )
    .argument('<cluster>', 'cluster name from the config')
    .option('--json', 'print the report as JSON (and nothing else)')
    .option('--timeout <seconds>', 'give up when no worker has finished the check by then', '120')
    .action(async (clusterName: string, opts: { json?: boolean; timeout: string }, cmd: Command) => {
      const config = await loadConfig(configFileOf(cmd));
      const cluster = findCluster(config, clusterName);
      const seconds = Number(opts.timeout);
      if (!Number.isInteger(seconds) || seconds < 1)
        throw new Error(`--timeout: expected a whole number of seconds, got "${opts.timeout}"`);
      const opened = await openClient(config);
      const { client, close } = opened;
      const taskQueue = siteTaskQueue(opened.taskQueue, cluster.site);
      try {
        const workflowId = `health-${cluster.name}-manual-${new Date().toISOString().replace(/[:.]/g, '')}`;
        const handle = await client.workflow.start(checkClusterHealth, {
          taskQueue,
          workflowId,
          args: [{ cluster: cluster.name }],
          // A check nobody runs must not wait forever: the server ends the run, and the CLI says why.
          workflowExecutionTimeout: `${seconds}s`,
          ...runMetadata({ what: `health check of ${cluster.name}`, cluster: cluster.name, startedBy: cliUser() }),
        });
        if (!opts.json) console.log(`started ${workflowId}`);
        const report = await runResult(
          'check',
          handle.result().catch((err: unknown) => {
            if (err instanceof WorkflowFailedError && err.cause instanceof TimeoutFailure)
              throw new Error(
                `check of ${cluster.name}: no result within ${seconds} s; is a worker running on task queue "${taskQueue}" (\`npm start\` or \`lifeboat worker\`)?`,
              );
            throw err;
          }),
        );
        console.log(opts.json ? JSON.stringify(report, null, 2) : formatHealthReport(report));
        if (report.problems.length) process.exitCode = 1;
      } finally {
        await close();
      }
    });
}
