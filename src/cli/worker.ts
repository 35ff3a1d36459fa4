import { Command } from 'commander';
import { runWorker } from '../worker';
import { configFileOf } from './config';

export function workerCommand(): Command {
  return new Command('worker')
    .description('run the Temporal worker (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE override the config file)')
    .option(
      '--site <site>',
      "run only the clusters of this site (clusters[].site), from their site's task queue; repeat for several; default: the clusters without a site",
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .action(async (opts: { site: string[] }, cmd: Command) => {
      await runWorker(configFileOf(cmd), { sites: opts.site });
    });
}
