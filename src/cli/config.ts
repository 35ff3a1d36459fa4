import { Command } from 'commander';
import { ConfigError, loadConfig } from '../config/load';

export function configFileOf(cmd: Command): string | undefined {
  return cmd.optsWithGlobals<{ config?: string }>().config ?? process.env.LIFEBOAT_CONFIG;
}

export function configCommand(): Command {
  const config = new Command('config').description('work with the config file');
  config
    .command('validate')
    .description('check the config file and list every problem by its path; exits 1 when there is one')
    .action(async (_opts: unknown, cmd: Command) => {
      const file = configFileOf(cmd);
      try {
        const loaded = await loadConfig(file);
        const names = loaded.clusters.map((c) => `${c.name} (${c.nodes.length} node${c.nodes.length === 1 ? '' : 's'})`);
        console.log(
          `${file ?? 'embedded defaults'}: valid; ${loaded.clusters.length} cluster${loaded.clusters.length === 1 ? '' : 's'}${names.length ? `: ${names.join(', ')}` : ''}`,
        );
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        console.error(err.message);
        process.exitCode = 1;
      }
    });
  return config;
}
