import { Command } from 'commander';
import pino from 'pino';
import { loadConfig } from '../config/load';
import { checkTemporal } from '../temporal/check';
import { connectClient } from '../temporal/connect';
import { describeTarget, temporalTarget } from '../temporal/connection';
import { LIFEBOAT_SEARCH_ATTRIBUTES } from '../temporal/search-attributes';
import { setupSearchAttributes } from '../temporal/setup';
import { connectWhenReachable } from '../temporal/wait-for-server';
import { deploymentNameOf, openRunsPinnedTo, setCurrentVersion, type WorkerDeployment } from '../temporal/deployment';
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
        // A wrong type is not fixed by registering again: the attribute must be removed first (its old values with it).
        for (const w of r.wrongType) console.log(`  ${removeCommand(w.name, r.namespace.name)}`);
        if (r.missing.length || r.wrongType.length) {
          console.log(
            `  ${r.wrongType.length ? 'then register' : 'register'} them with \`lifeboat temporal setup\` (or \`temporal operator search-attribute create --name NAME --type Keyword\`)`,
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
          console.log(
            `WRONG    ${w.name} is registered with type ${w.type}, not Keyword: the workflows cannot set it; ${removeCommand(w.name, namespace)}, then run this again`,
          );
        if (r.wrongType.length) process.exitCode = 1;
      } finally {
        await close();
      }
    });
  // Rolling out a new worker version (docs/upgrades.md): start its workers, make it current, wait until the old one
  // is drained, stop the old workers.
  cmd
    .command('set-current-version')
    .argument('<build-id>', "the new version's build id (its workers log it at start: `worker started` ... deployment)")
    .description('make a worker version current: new runs and backups, drills, health checks go to it; recoveries stay where they started')
    .action(async (buildId: string, _opts: unknown, c: Command) => {
      const config = await loadConfig(configFileOf(c));
      const deployment = { deploymentName: requireDeployment(config), buildId };
      const { client, close } = await openClient(config);
      try {
        await setCurrentVersion(client, deployment).catch((err: Error) => {
          throw new Error(
            `cannot make ${buildId} the current version of deployment ${deployment.deploymentName}: ${err.message} (has a worker of that build id started and polled?)`,
          );
        });
        console.log(`current version of ${deployment.deploymentName}: ${buildId}`);
      } finally {
        await close();
      }
    });
  cmd
    .command('pinned-runs')
    .argument('<build-id>', 'the build id of a version being retired')
    .description(
      'count the open runs (recoveries) pinned to a worker version; exits 0 when there are none (drained: stop its workers), 1 otherwise',
    )
    .action(async (buildId: string, _opts: unknown, c: Command) => {
      const config = await loadConfig(configFileOf(c));
      const deployment: WorkerDeployment = { deploymentName: requireDeployment(config), buildId };
      const { client, close } = await openClient(config);
      try {
        const open = await openRunsPinnedTo(client, deployment);
        console.log(
          open ? `${open} open run(s) pinned to ${buildId}: keep its workers running` : `${buildId} is drained: its workers can be stopped`,
        );
        if (open) process.exitCode = 1;
      } finally {
        await close();
      }
    });
  return cmd;
}

function requireDeployment(config: Parameters<typeof deploymentNameOf>[0]): string {
  const name = deploymentNameOf(config);
  if (!name)
    throw new Error('temporal.deployment.name (or LIFEBOAT_DEPLOYMENT_NAME) is not set: Worker Versioning is off (docs/upgrades.md)');
  return name;
}

/** How an attribute registered with another type is removed (Temporal cannot change an attribute's type in place). */
function removeCommand(name: string, namespace: string): string {
  return `remove it with \`temporal operator search-attribute remove --name ${name} --namespace ${namespace} --yes\``;
}
