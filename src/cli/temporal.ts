import { Command } from 'commander';
import pino from 'pino';
import { loadConfig } from '../config/load';
import { checkTemporal } from '../temporal/check';
import { connectClient } from '../temporal/connect';
import { describeTarget, temporalTarget } from '../temporal/connection';
import { LIFEBOAT_SEARCH_ATTRIBUTES } from '../temporal/search-attributes';
import { setupSearchAttributes } from '../temporal/setup';
import { connectWhenReachable } from '../temporal/wait-for-server';
import { configFileOf } from './config';
import { openClient } from './temporal-client';

export function temporalCommand(): Command {
  const cmd = new Command('temporal').description('the Temporal server and namespace the engine runs in: check it, prepare it');
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
  cmd
    .command('setup')
    .description('register the search attributes the workflows set (LifeboatCluster, LifeboatRun, LifeboatOutcome); idempotent')
    .option('--wait', 'while the Temporal server cannot be reached, wait for it as the worker does (logged on stderr) instead of failing')
    .action(async (opts: { wait?: boolean }, cmd: Command) => {
      const config = await loadConfig(configFileOf(cmd));
      // Before `lifeboat worker` in a container entrypoint: a server still starting must not make the container exit.
      const { client, close } = opts.wait
        ? (await connectWhenReachable(() => openClient(config), {
            target: await temporalTarget(config),
            logger: pino({ name: 'lifeboat' }, pino.destination(2)),
          }))!
        : await openClient(config);
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
  return cmd;
}
