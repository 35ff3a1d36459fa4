import { Command } from 'commander';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { CatalogEntry } from '../backup/catalog';
import { manifestOrder, readTrustedBackup, trustedBackups, trustRulesFor } from '../backup/trusted-catalog';
import { clusterBackupPrefix, manifestKeyOf } from '../backup/object-keys';
import { findCluster, loadConfig } from '../config/load';
import { s3ClientFor } from '../storage/s3-client';
import { drilledColumn, readDrillReport } from '../drill/report';
import { configFileOf } from './config';
import { runMetadata } from '../temporal/run-metadata';
import { cliUser } from './user';
import { openClient } from './temporal-client';
import { siteTaskQueue } from '../temporal/connection';
import { runResult } from './run-result';
import { warnAboutEncryption } from './warnings';
import { backupCluster, importBackup } from '../../workflows';
import { importStagingPrefix } from '../backup/import-source';
import { importInputProblems } from '../../workflows/import-input';

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

export function backupCommand(): Command {
  const backup = new Command('backup').description('take, list and inspect backups');
  backup
    .command('now <cluster>')
    .description('start a backup of the cluster now (workflow backup-<cluster>-manual-<time>)')
    .option('--wait', 'follow its progress and print the summary')
    .option('--reason <text>', 'why this backup is taken', 'manual')
    .option(
      '--allow-revision-regression',
      "store it even though etcd's revision is below the newest backup's (etcd was reset on purpose; otherwise restore instead)",
    )
    .action(async (clusterName: string, opts: { wait?: boolean; reason: string; allowRevisionRegression?: boolean }, cmd: Command) => {
      const config = await loadConfig(configFileOf(cmd));
      const cluster = findCluster(config, clusterName);
      warnAboutEncryption(cluster);
      const { client, taskQueue, close } = await openClient(config);
      try {
        const workflowId = `backup-${cluster.name}-manual-${new Date().toISOString().replace(/[:.]/g, '')}`;
        const handle = await client.workflow.start(backupCluster, {
          taskQueue: siteTaskQueue(taskQueue, cluster.site),
          workflowId,
          args: [
            { cluster: cluster.name, reason: opts.reason, ...(opts.allowRevisionRegression ? { allowRevisionRegression: true } : {}) },
          ],
          ...runMetadata({ what: `backup of ${cluster.name}`, cluster: cluster.name, reason: opts.reason, startedBy: cliUser() }),
        });
        console.log(`started ${workflowId}`);
        if (!opts.wait) return;
        let lastLine = '';
        const show = async () => {
          const d = await handle.describe().catch(() => undefined);
          const pending = d?.raw.pendingActivities?.[0];
          if (!pending) return;
          const details = pending.heartbeatDetails?.payloads?.[0]?.data;
          let bytes = '';
          if (details) {
            try {
              bytes = ` ${mib((JSON.parse(Buffer.from(details).toString('utf8')) as { bytes?: number }).bytes ?? 0)}`;
            } catch {
              // details from another encoding: show the step only
            }
          }
          const line = `  ${pending.activityType?.name}${bytes}${(pending.attempt ?? 1) > 1 ? ` (attempt ${pending.attempt})` : ''}`;
          if (line !== lastLine) console.log((lastLine = line));
        };
        const poll = setInterval(() => void show(), 1000);
        try {
          const r = await runResult('backup', handle.result());
          console.log(
            `backup of ${r.cluster} complete: revision ${r.revision}${r.totalKeys === undefined ? '' : `, ${r.totalKeys} keys`}, ${mib(r.plainBytes)} -> ${mib(r.storedBytes)} stored (${r.compression}${r.compressedOn ? ` on the ${r.compressedOn}` : ''}, ${r.encryptionKeyId ? `encrypted with key ${r.encryptionKeyId}` : 'UNENCRYPTED'})`,
          );
          console.log(`  ${r.location}/${r.snapshotKey.slice(r.snapshotKey.indexOf(`${r.cluster}/`))}`);
          if (r.compressionNote) console.log(`  note: ${r.compressionNote}`);
          if (r.revisionRegressionAllowed)
            console.log(
              `  stored below the revision floor ${r.revisionRegressionAllowed.floor} (${r.revisionRegressionAllowed.from}), as allowed`,
            );
          console.log(`  steps: ${r.steps.map((s) => `${s.step} ${(s.ms / 1000).toFixed(1)}s`).join(', ')}`);
          if (r.retention.deleted.length) console.log(`  retention removed: ${r.retention.deleted.map((d) => d.key).join(', ')}`);
        } finally {
          clearInterval(poll);
        }
      } finally {
        await close();
      }
    });
  backup
    .command('import <cluster> <source>')
    .description(
      "bring in a snapshot made by `etcdctl snapshot save` (an S3 key in the cluster's bucket, or a local file): verified, encrypted and stored as a backup marked imported",
    )
    .option('--reason <text>', 'why it is imported', 'import')
    .action(async (clusterName: string, source: string, opts: { reason: string }, cmd: Command) => {
      const config = await loadConfig(configFileOf(cmd));
      const cluster = findCluster(config, clusterName);
      warnAboutEncryption(cluster);
      const local = await stat(source).catch(() => undefined);
      if (local && !local.isFile()) throw new Error(`${source} is not a file`);
      // Not on this machine: read as a key in the cluster's bucket, unless it can only have meant a path.
      if (!local && /^(\/|\.\.?\/|~)/.test(source))
        throw new Error(`${source}: no such file (an S3 key is given without a leading "/", as in etcd-backups/2026-11-25-09-45)`);
      const stamp = new Date().toISOString().replace(/[:.]/g, '');
      // A local file goes to the bucket first, under <prefix>/<cluster>/import-staging/ (no listing or retention looks
      // there), so the worker can read it wherever it runs; the workflow removes that copy when it ends, either way.
      const from = local ? basename(source) : source;
      const safeName = from.replace(/[^A-Za-z0-9._-]/g, '_');
      const key = local ? `${importStagingPrefix(cluster.storage.prefix, cluster.name)}${stamp}-${safeName}` : source;
      const input = {
        cluster: cluster.name,
        key,
        reason: opts.reason,
        ...(local ? { from: safeName, staged: true } : {}),
      };
      const problems = importInputProblems(input);
      if (problems.length) throw new Error(`cannot import ${source}: ${problems.join('; ')}`);
      if (local?.size === 0) throw new Error(`${source} is empty (0 bytes): not an etcd snapshot; nothing was stored`);
      // Connected first: a staged copy is only left behind if the start itself fails, and then it is removed.
      const { client, taskQueue, close } = await openClient(config);
      try {
        const s3 = local ? await s3ClientFor(cluster.storage) : undefined;
        if (local && s3) {
          try {
            await s3.send(
              new PutObjectCommand({ Bucket: cluster.storage.bucket, Key: key, Body: createReadStream(source), ContentLength: local.size }),
            );
          } catch (err) {
            s3.destroy();
            throw err;
          }
        }
        const workflowId = `import-${cluster.name}-${stamp}`;
        const handle = await client.workflow
          .start(importBackup, {
            taskQueue: siteTaskQueue(taskQueue, cluster.site),
            workflowId,
            args: [input],
            ...runMetadata({
              what: `import of ${from} into ${cluster.name}`,
              cluster: cluster.name,
              reason: opts.reason,
              startedBy: cliUser(),
            }),
          })
          .catch(async (err: unknown) => {
            await s3?.send(new DeleteObjectCommand({ Bucket: cluster.storage.bucket, Key: key })).catch(() => undefined);
            throw err;
          })
          .finally(() => s3?.destroy());
        console.log(`started ${workflowId}`);
        const r = await runResult('import', handle.result());
        console.log(
          `imported ${r.from} into ${r.cluster}: revision ${r.revision}, ${r.totalKeys} keys, etcd hash ${r.hash}${r.storageVersion ? `, storage version ${r.storageVersion}` : ''}`,
        );
        console.log(`  created ${r.created} (from the ${r.createdFrom}); checked with ${r.checkedWith}`);
        console.log(
          `  ${r.location}/${r.snapshotKey.slice(r.snapshotKey.indexOf(`${r.cluster}/`))} (${mib(r.plainBytes)} -> ${mib(r.storedBytes)}, ${r.encryptionKeyId ? `encrypted with key ${r.encryptionKeyId}` : 'UNENCRYPTED'})`,
        );
        console.log(
          "  no control-plane archive: a recovery in place from it keeps the node's own PKI and manifests; it cannot rebuild a new node",
        );
      } finally {
        await close();
      }
    });
  backup
    .command('list <cluster>')
    .description("list the cluster's backups, newest first, from their manifests")
    .option('--json', 'print JSON')
    .action(async (clusterName: string, opts: { json?: boolean }, cmd: Command) => {
      const config = await loadConfig(configFileOf(cmd));
      const cluster = findCluster(config, clusterName);
      const s3 = await s3ClientFor(cluster.storage);
      try {
        // Believed backups and the manifests passed over (copied, forged, unreadable), newest first by key.
        const rules = trustRulesFor(config, cluster);
        const { backups, passedOver } = await trustedBackups(s3, rules);
        const entries: CatalogEntry[] = [
          ...backups.map((b) => ({ manifestKey: b.manifestKey, manifest: b.manifest })),
          ...passedOver.map((p) => ({ manifestKey: p.manifestKey, problem: `not believed: ${p.reason}` })),
        ].sort((a, b) => manifestOrder(a.manifestKey, b.manifestKey));
        // A report that cannot be read is shown as such, never as a pass.
        const drills = await Promise.all(
          entries.map((e) => readDrillReport(s3, rules, e.manifestKey).then(drilledColumn, () => 'unreadable')),
        );
        if (opts.json)
          return console.log(
            JSON.stringify(
              entries.map((e, i) => ({ ...e, drilled: drills[i] })),
              null,
              2,
            ),
          );
        console.log('CREATED                   REVISION   SIZE        ENCRYPTED  VERIFIED  DRILLED            KEY');
        for (const [i, e] of entries.entries()) {
          const m = e.manifest;
          if (!m) {
            console.log(
              `${'?'.padEnd(25)} ${'?'.padEnd(10)} ${'?'.padEnd(11)} ${'?'.padEnd(10)} ${'no'.padEnd(9)} ${drills[i].padEnd(18)} ${e.manifestKey} (${e.problem})`,
            );
            continue;
          }
          console.log(
            `${m.created.padEnd(25)} ${String(m.etcd.revision).padEnd(10)} ${mib(m.snapshot.plainSize).padEnd(11)} ${(m.snapshot.encryption ? m.snapshot.encryption.keyId : 'no').padEnd(10)} ${(m.verified ? 'yes' : 'no').padEnd(9)} ${drills[i].padEnd(18)} ${m.snapshot.key}${m.source?.kind === 'imported' ? ` (imported from ${m.source.from})` : m.source?.kind === 'point-in-time' ? ` (point in time: ${m.source.base} + ${m.source.segments} segments)` : ''}`,
          );
        }
      } finally {
        s3.destroy();
      }
    });
  backup
    .command('show <key>')
    .description('print the manifest of a backup, by its snapshot, archive or manifest key (as `backup list` shows it)')
    .action(async (key: string, _o: unknown, cmd: Command) => {
      const config = await loadConfig(configFileOf(cmd));
      const cluster = config.clusters.find((c) => key.startsWith(clusterBackupPrefix(c.storage.prefix, c.name)));
      if (!cluster)
        throw new Error(
          `key "${key}" is under no configured cluster's prefix (<prefix>/<cluster>/etcd/); copy it from \`lifeboat backup list <cluster>\``,
        );
      const s3 = await s3ClientFor(cluster.storage);
      try {
        const manifestKey = manifestKeyOf(key);
        // Shown only if believed: `backup list` names the ones that are not, and why.
        const { manifest, authentication } = await readTrustedBackup(s3, trustRulesFor(config, cluster), manifestKey);
        const drill = await readDrillReport(s3, trustRulesFor(config, cluster), manifestKey).catch(
          (err: Error) => `unreadable: ${err.message}`,
        );
        console.log(JSON.stringify({ ...manifest, authentication, drill: drill ?? 'never drilled' }, null, 2));
      } finally {
        s3.destroy();
      }
    });
  return backup;
}
