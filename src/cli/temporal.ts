import { Command } from 'commander';
import { loadConfig } from '../config/load';
import { setupSearchAttributes } from '../temporal/setup';
import { configFileOf } from './config';
import { openClient } from './temporal-client';

/** `lifeboat temporal ...`: what the engine needs from the Temporal namespace it runs in. */
export function temporalCommand(): Command {
  const temporal = new Command('temporal').description('prepare the Temporal namespace the engine runs in');
  temporal
    .command('setup')
    .description('register the search attributes the workflows set (LifeboatCluster, LifeboatRun, LifeboatOutcome); idempotent')
    .action(async (_opts: unknown, cmd: Command) => {
      const config = await loadConfig(configFileOf(cmd));
      const { client, close } = await openClient(config);
      try {
        const namespace = client.options.namespace;
        const r = await setupSearchAttributes(client.connection, namespace).catch((err: Error) => {
          throw new Error(
            `cannot register search attributes in namespace ${namespace}: ${err.message} (on Temporal Cloud, add them as Keyword in the namespace's settings or with tcld)`,
          );
        });
        for (const name of r.added) console.log(`added    ${name} (Keyword)`);
        for (const name of r.present) console.log(`present  ${name}`);
        for (const w of r.wrongType)
          console.log(`WRONG    ${w.name} is registered with type ${w.type}, not Keyword: the workflows cannot set it`);
        if (r.wrongType.length) process.exitCode = 1;
      } finally {
        await close();
      }
    });
  return temporal;
}
