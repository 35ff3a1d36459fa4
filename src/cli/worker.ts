import { Command } from 'commander';
import { runWorker } from '../worker';
import { configFileOf } from './config';

export function workerCommand(): Command {
  return new Command('worker')
    .description('run the Temporal worker (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE override the config file)')
    .action(async (_opts: unknown, cmd: Command) => {
      await runWorker(configFileOf(cmd));
    });
}
