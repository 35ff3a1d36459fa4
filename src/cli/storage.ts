import { Command } from 'commander';
import { findCluster, loadConfig } from '../config/load';
import { applyLifecycle, getLifecycleRules } from '../backup/lifecycle';
import { describeLocation, s3ClientFor } from '../storage/s3-client';
import { configFileOf } from './config';

export function storageCommand(): Command {
  const storage = new Command('storage').description('the S3 side: bucket lifecycle rules');
  const lifecycle = storage
    .command('lifecycle')
    .description('lifecycle rules (transition, expiry, abort of incomplete uploads) from config');
  lifecycle
    .command('apply <cluster>')
    .description("write the cluster's storage.lifecycle rules to its bucket, keeping every other rule")
    .action(async (clusterName: string, _o: unknown, cmd: Command) => {
      const config = await loadConfig(configFileOf(cmd));
      const cluster = findCluster(config, clusterName);
      if (!cluster.storage.lifecycle) throw new Error(`cluster "${cluster.name}" has no storage.lifecycle in the config; nothing to apply`);
      const s3 = await s3ClientFor(cluster.storage);
      try {
        const { rules, kept } = await applyLifecycle(s3, cluster);
        console.log(`applied to ${describeLocation(cluster.storage)}:`);
        console.log(JSON.stringify(rules, null, 2));
        if (kept.length) console.log(`kept other rules: ${kept.join(', ')}`);
      } finally {
        s3.destroy();
      }
    });
  lifecycle
    .command('show <cluster>')
    .description("print the lifecycle rules of the cluster's bucket")
    .action(async (clusterName: string, _o: unknown, cmd: Command) => {
      const config = await loadConfig(configFileOf(cmd));
      const cluster = findCluster(config, clusterName);
      const s3 = await s3ClientFor(cluster.storage);
      try {
        console.log(JSON.stringify(await getLifecycleRules(s3, cluster.storage.bucket), null, 2));
      } finally {
        s3.destroy();
      }
    });
  return storage;
}
