#!/usr/bin/env node
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { engineVersion } from '../version';
import { configCommand } from './config';
import { workerCommand } from './worker';
import { backupCommand } from './backup';
import { scheduleCommand } from './schedule';
import { storageCommand } from './storage';
import { recoveryCommand, restoreCommand } from './recovery';
import { healthCommand } from './health';
import { checkCommand } from './check';
import { statusCommand } from './status';
import { temporalCommand } from './temporal';
import { codecServerCommand } from './codec-server';
import { drillCommand } from './drill';

/** `lifeboat`: one binary for operators; each subcommand lives in its own file. */
export function buildProgram(): Command {
  const program = new Command('lifeboat')
    .description('Disaster recovery for single-node Kubernetes control planes: verified etcd backups and restores on Temporal.')
    .version(engineVersion(), '-V, --version-flag', 'print the version')
    .option('-c, --config <file>', 'config file (YAML); default: $LIFEBOAT_CONFIG, else embedded defaults')
    .showHelpAfterError('(run with --help for usage)');
  program
    .command('version')
    .description('print the engine version and the Temporal SDK it is built with')
    .action(() => {
      const sdk = (JSON.parse(readFileSync(require.resolve('@temporalio/worker/package.json'), 'utf8')) as { version: string }).version;
      console.log(`lifeboat ${engineVersion()} (Temporal TypeScript SDK ${sdk}, Node ${process.version})`);
    });
  program.addCommand(configCommand());
  program.addCommand(workerCommand());
  program.addCommand(backupCommand());
  program.addCommand(scheduleCommand());
  program.addCommand(storageCommand());
  program.addCommand(restoreCommand());
  program.addCommand(recoveryCommand());
  program.addCommand(healthCommand());
  program.addCommand(checkCommand());
  program.addCommand(statusCommand());
  program.addCommand(temporalCommand());
  program.addCommand(codecServerCommand());
  program.addCommand(drillCommand());
  return program;
}

if (require.main === module) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      console.error(err instanceof Error ? err.message : String(err));
      process.exit(1);
    });
}
