import { Command } from 'commander';
import { loadConfig } from '../config/load';
import { checkTemporal } from '../temporal/check';
import { connectClient } from '../temporal/connect';
import { describeTarget } from '../temporal/connection';
import { LIFEBOAT_SEARCH_ATTRIBUTES } from '../temporal/search-attributes';
import { configFileOf } from './config';

export function temporalCommand(): Command {
  const cmd = new Command('temporal').description('the Temporal server the engine uses');
  cmd
    .command('check')
    .description('connect as the worker would, describe the namespace, report missing lifeboat search attributes; exits 1 on a problem')
    .action(async (_opts: unknown, c: Command) => {
      const config = await loadConfig(configFileOf(c));
      const { client, target, close } = await connectClient(config);
      try {
        console.log(`connected: ${describeTarget(target)}`);
        const r = await checkTemporal(client).catch((err: Error) => {
          throw new Error(`connected, but cannot read namespace ${target.namespace} (${target.from.namespace}): ${err.message}`);
        });
        console.log(`server:    Temporal ${r.serverVersion}`);
        console.log(
          `namespace: ${r.namespace.name} (${r.namespace.state}${r.namespace.retention ? `, retention ${r.namespace.retention}` : ''})`,
        );
        const names = Object.keys(LIFEBOAT_SEARCH_ATTRIBUTES);
        const ok = names.filter((n) => !r.missing.includes(n) && !r.wrongType.some((w) => w.name === n));
        console.log(`search attributes: ${ok.length}/${names.length} present${ok.length ? ` (${ok.join(', ')})` : ''}`);
        for (const n of r.missing)
          console.log(`  missing ${n} (${LIFEBOAT_SEARCH_ATTRIBUTES[n as keyof typeof LIFEBOAT_SEARCH_ATTRIBUTES]})`);
        for (const w of r.wrongType) console.log(`  ${w.name} is ${w.has}, lifeboat needs ${w.wants}`);
        if (r.missing.length || r.wrongType.length) {
          console.log(
            '  register them with `lifeboat temporal setup` (or `temporal operator search-attribute create --name NAME --type Keyword`)',
          );
          process.exitCode = 1;
        }
      } finally {
        await close();
      }
    });
  return cmd;
}
