import { maxRevision, revisionFromJson, type Revision } from '../../src/etcd/revision';
import { refuseWithinCooldown } from './recent-recovery';
import { durationMs } from '../../src/schedules/backup-schedules';
import { ApplicationFailure } from '@temporalio/common';
import { Writable } from 'node:stream';
import { posix } from 'node:path';
import { loadEncryptionKey } from '../../src/backup/keyring';
import { readStoredObject } from '../../src/backup/read-object';
import { newestTrustedBackup, trustRulesFor, type TrustRules } from '../../src/backup/trusted-catalog';
import { etcdctl } from '../../src/etcd/commands';
import { readTarEntry } from '../../src/backup/tar';
import { findCluster } from '../../src/config/load';
import type { ClusterConfig, Config, NodeConfig } from '../../src/config/schema';
import { minorOf, parseEtcdManifest, type EtcdMember } from '../../src/etcd/static-pod';
import { revisionBumpFor, type RecoveryPlan } from '../../src/recovery/plan';
import { s3ClientFor } from '../../src/storage/s3-client';
import { withSession, type NodeSession } from '../../src/ssh/session';
import { command } from '../../src/ssh/quote';
import type { ActivityDeps } from '../deps';
import { cancellationSignal } from '../heartbeat';
import { checkRunKey } from '../../src/run-key';
import { selectSnapshot, SnapshotSelectionError } from './select-snapshot';

export interface PlanRecoveryInput {
  cluster: string;
  snapshot: string;
  target?: string;
  targetHostKey?: string;
  mode: 'in-place' | 'new-node';
  runKey: string;
  /** For "latest": backups to pass over, with why (one that failed verification while it was fetched). */
  passOver?: { manifestKey: string; reason: string }[];
  /** A person's explicit go-ahead for a restore within recovery.cooldown of the last one. */
  overrideCooldown?: boolean;
  /** A person's go-ahead for a backup whose manifest carries no tag (written before manifests were signed). */
  acceptUnsignedManifest?: boolean;
}

/** The node to restore onto: a configured node by name, or a host with its pinned key, reached like the cluster's nodes. */
export function targetNode(cluster: ClusterConfig, target: string | undefined, targetHostKey: string | undefined): NodeConfig {
  if (target === undefined) return cluster.nodes[0];
  const configured = cluster.nodes.find((n) => n.name === target);
  if (configured) return configured;
  if (!targetHostKey) {
    throw ApplicationFailure.nonRetryable(
      `target: "${target}" is not a node of cluster "${cluster.name}" (${cluster.nodes.map((n) => n.name).join(', ')}); to restore onto another host give its host key as targetHostKey (ssh-keyscan -t ed25519 ${target})`,
      'InvalidInput',
    );
  }
  const template = cluster.nodes[0];
  return {
    ...template,
    name: target.replace(/[^a-z0-9-]/gi, '-').toLowerCase(),
    host: target,
    hostKey: targetHostKey,
    knownHostsFile: undefined,
  };
}

/** Collects a stream into memory (small objects only: the control-plane archive). */
class Collector extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk);
    cb();
  }
}

async function etcdManifestFromBackup(
  config: Config,
  cluster: ClusterConfig,
  manifest: import('../../src/backup/manifest').BackupManifest,
): Promise<string> {
  const files = manifest.controlPlaneFiles!;
  const key = files.encryption ? await loadEncryptionKey(config, files.encryption.keyId) : undefined;
  const s3 = await s3ClientFor(cluster.storage);
  try {
    const sink = new Collector();
    await readStoredObject(s3, cluster.storage.bucket, files, () => key, sink);
    const entry = readTarEntry(Buffer.concat(sink.chunks), `${posix.basename(cluster.paths.manifestsDir)}/etcd.yaml`);
    if (!entry)
      throw ApplicationFailure.nonRetryable(
        `the backup's control-plane files hold no etcd.yaml manifest; cannot rebuild a node from it`,
        'IncompleteBackup',
      );
    return entry.toString('utf8');
  } finally {
    s3.destroy();
  }
}

async function toolOnNode(s: NodeSession, cluster: ClusterConfig, wantedMinor: string | undefined): Promise<RecoveryPlan['tool']> {
  const node = s.node;
  const versionOf = async (argv: string[]) => {
    const r = await s.run(['sh', '-c', `${command(argv)} 2>/dev/null`], { allowFailure: true });
    return r.code === 0 ? /version:\s*(\S+)/i.exec(r.stdout)?.[1] : undefined;
  };
  const etcdutl = await versionOf([cluster.etcd.etcdutl, 'version']);
  const etcdctl = await versionOf([cluster.etcd.etcdctl, 'version']);
  // etcd 3.5+ restores with etcdutl (3.6 has no `etcdctl snapshot restore`); 3.4 only has etcdctl.
  const pick = etcdutl
    ? { command: cluster.etcd.etcdutl, kind: 'etcdutl' as const, version: etcdutl }
    : etcdctl
      ? { command: cluster.etcd.etcdctl, kind: 'etcdctl' as const, version: etcdctl }
      : undefined;
  if (!pick) {
    throw ApplicationFailure.nonRetryable(
      `node "${node.name}" has neither ${cluster.etcd.etcdutl} nor ${cluster.etcd.etcdctl}; install the etcd ${wantedMinor ?? ''} tools there or set etcd.etcdutl / etcd.etcdctl in the config`,
      'PreflightFailed',
    );
  }
  if (wantedMinor && minorOf(pick.version) !== wantedMinor) {
    throw new UnusableBackup(
      `node "${node.name}" has ${pick.kind} ${pick.version} but the backup is from etcd ${wantedMinor}: restore with the same etcd minor version (install etcd ${wantedMinor} tools, set etcd.${pick.kind} in the config)`,
      'PreflightFailed',
    );
  }
  const [major, minor] = pick.version.split('.').map(Number);
  return {
    ...pick,
    bumpRevision: pick.kind === 'etcdutl' && (major > 3 || minor >= 6 || (minor === 5 && Number(pick.version.split('.')[2]) >= 6)),
  };
}

/** etcd's revision on the target right now, when it answers (in place, a cluster that is up); undefined otherwise. */
async function liveRevision(s: NodeSession, cluster: ClusterConfig): Promise<Revision | undefined> {
  const r = await s.run(['timeout', '10', ...etcdctl(cluster, 'endpoint', 'status', '-w', 'json')], { allowFailure: true });
  if (r.code !== 0) return undefined;
  return revisionFromJson(r.stdout);
}

/**
 * The newest believed backup's revision (taken after an earlier restore, it is above it). Only a manifest that is
 * authentic and stored where its content says counts: a planted one must not steer how far etcd's revision moves.
 */
async function newestBackupRevision(cluster: ClusterConfig, rules: TrustRules): Promise<Revision | undefined> {
  const s3 = await s3ClientFor(cluster.storage);
  try {
    return (await newestTrustedBackup(s3, rules)).newest?.manifest.etcd.revision;
  } finally {
    s3.destroy();
  }
}

/** A backup that cannot be restored on this target for a reason known before anything changes. */
class UnusableBackup extends Error {
  manifestKey?: string;
  constructor(
    message: string,
    readonly type: 'PreflightFailed' | 'MissingSecret',
  ) {
    super(message);
  }
}

/**
 * Resolves the snapshot and checks the target before anything changes: the node is reached with its pinned host key,
 * its etcd tools must match the backup's etcd version, it needs twice the snapshot's size free, and (new node) the
 * control-plane ports must be free. Returns the full plan; changes nothing anywhere. For "latest", a backup that
 * cannot be used here (its key id is not in the key ring, its etcd version has no tools on the target) is passed
 * over and named, like a corrupt one; a backup named by key is refused with the reason.
 */
export function planRecovery(deps: ActivityDeps) {
  const once = planRecoveryOnce(deps);
  return async (input: PlanRecoveryInput): Promise<RecoveryPlan> => {
    const passOver = [...(input.passOver ?? [])];
    for (;;) {
      try {
        return await once({ ...input, passOver });
      } catch (err) {
        if (!(err instanceof UnusableBackup)) throw err;
        if (input.snapshot !== 'latest' || !err.manifestKey) throw ApplicationFailure.nonRetryable(err.message, err.type);
        passOver.push({ manifestKey: err.manifestKey, reason: err.message });
      }
    }
  };
}

function planRecoveryOnce(deps: ActivityDeps) {
  return async (input: PlanRecoveryInput): Promise<RecoveryPlan> => {
    const cluster = findCluster(deps.config, input.cluster);
    const node = targetNode(cluster, input.target, input.targetHostKey);
    const runKey = checkRunKey(input.runKey);
    await refuseWithinCooldown(deps.client, cluster.name, durationMs(cluster.recovery.cooldown), input.overrideCooldown);
    const s3 = await s3ClientFor(cluster.storage);
    const rules = trustRulesFor(deps.config, cluster, input.acceptUnsignedManifest ?? false);
    let choice;
    try {
      choice = await selectSnapshot(s3, rules, input.snapshot, input.mode === 'new-node', input.passOver);
    } catch (err) {
      if (err instanceof SnapshotSelectionError)
        throw ApplicationFailure.nonRetryable(err.message, err.type === 'UntrustedSnapshot' ? 'UnauthenticatedManifest' : err.type);
      throw err;
    } finally {
      s3.destroy();
    }
    const m = choice.manifest;
    const unusable = (err: unknown): never => {
      if (err instanceof UnusableBackup) err.manifestKey = choice.manifestKey;
      throw err;
    };
    if (m.snapshot.encryption) {
      await loadEncryptionKey(deps.config, m.snapshot.encryption.keyId).catch((err: Error) =>
        unusable(new UnusableBackup(`backup ${choice.manifestKey}: ${err.message}`, 'MissingSecret')),
      );
    }
    const authentication = choice.authentication.status;

    return withSession(
      node,
      async (s) => {
        const run = (argv: string[], allowFailure = false) => s.run(argv, { allowFailure });
        const wantedMinor = minorOf(m.etcd.serverVersion);
        const tool = await toolOnNode(s, cluster, wantedMinor).catch(unusable);
        const knownRevisions = { live: await liveRevision(s, cluster), newestBackup: await newestBackupRevision(cluster, rules) };
        let revisionBump: Revision;
        try {
          revisionBump = revisionBumpFor(m.etcd.revision, maxRevision(m.etcd.revision, knownRevisions.live, knownRevisions.newestBackup)!);
        } catch (err) {
          throw ApplicationFailure.nonRetryable(
            `${(err as Error).message}; known: live ${knownRevisions.live ?? 'unread'}, newest believed backup ${knownRevisions.newestBackup ?? 'none'}. Check etcd's revision on the node before restoring`,
            'PreflightFailed',
          );
        }
        const etcdYamlPath = `${cluster.paths.manifestsDir}/etcd.yaml`;
        let member: EtcdMember;
        if (input.mode === 'in-place') {
          const text = await run(['cat', etcdYamlPath], true);
          if (text.code !== 0) {
            throw ApplicationFailure.nonRetryable(
              `node "${node.name}" has no ${etcdYamlPath}: it does not run etcd as a static pod; use mode "new-node" to rebuild it from the backup`,
              'PreflightFailed',
            );
          }
          member = parseEtcdManifest(text.stdout, `${node.name}:${etcdYamlPath}`);
        } else {
          member = parseEtcdManifest(await etcdManifestFromBackup(deps.config, cluster, m), `backup ${choice.manifestKey}: etcd.yaml`);
          const busy = await run(['sh', '-c', "ss -Htln 2>/dev/null | awk '{print $4}' | grep -E ':(2379|2380|6443)$' || true"]);
          if (busy.stdout.trim()) {
            // By port, then address: `ss` lists sockets in no fixed order, and the message should read the same each time.
            const portOf = (a: string) => Number(a.slice(a.lastIndexOf(':') + 1));
            const listening = [...new Set(busy.stdout.trim().split('\n'))].sort((a, b) => portOf(a) - portOf(b) || a.localeCompare(b));
            throw ApplicationFailure.nonRetryable(
              `node "${node.name}" already listens on ${listening.join(', ')}: a control plane runs there; use mode "in-place" or a clean node`,
              'PreflightFailed',
            );
          }
        }
        const dataDir = member.hostDataDir;
        const parent = posix.dirname(dataDir);
        await run(['mkdir', '-p', parent, cluster.paths.workDir]);
        // The restored data dir (about twice the snapshot) lands beside the data dir; the fetched snapshot itself in the
        // work dir. Where both are on one filesystem, it must hold all of it.
        const df = await run(['df', '-Pk', parent, cluster.paths.workDir]);
        const [dataFs, workFs] = df.stdout
          .trim()
          .split('\n')
          .slice(-2)
          .map((l) => {
            const f = l.split(/\s+/);
            return { free: Number(f[3]) * 1024, mount: f[5] };
          });
        const freeBytes = dataFs.free;
        const mib = (b: number) => Math.ceil(b / 1048576);
        const need = (where: string, free: number, bytes: number, what: string) => {
          if (free < bytes)
            throw ApplicationFailure.nonRetryable(
              `node "${node.name}": ${where} has ${Math.floor(free / 1048576)} MiB free; the restore needs at least ${mib(bytes)} MiB there (${what}); free space first`,
              'PreflightFailed',
            );
        };
        if (dataFs.mount === workFs.mount)
          need(
            `${parent} (with ${cluster.paths.workDir}, same filesystem)`,
            freeBytes,
            3 * m.snapshot.plainSize,
            'the fetched snapshot and twice its size for the restore',
          );
        else {
          need(parent, freeBytes, 2 * m.snapshot.plainSize, 'twice the snapshot');
          need(cluster.paths.workDir, workFs.free, m.snapshot.plainSize, 'the fetched snapshot');
        }
        const runDir = `${cluster.paths.workDir}/recoveries/${runKey}`;
        const paths: RecoveryPlan['paths'] = {
          runDir,
          snapshotFile: `${runDir}/snapshot.db`,
          manifestsDir: cluster.paths.manifestsDir,
          asideManifestsDir: `${runDir}/manifests-before`,
          dataDir,
          restoreDir: `${dataDir}.restored-${runKey}`,
          asideDataDir: `${dataDir}.before-${runKey}`,
          controlPlaneFilesDir: `${runDir}/control-plane`,
        };
        const steps = [
          `fetch ${m.snapshot.key} (revision ${m.etcd.revision}${m.etcd.totalKeys === undefined ? '' : `, ${m.etcd.totalKeys} keys`}) to ${paths.snapshotFile}, checking its sha256 on the node`,
          ...(input.mode === 'new-node'
            ? [
                `put back the backup's PKI and kubeconfigs into ${cluster.paths.kubernetesDir} (anything there is moved to ${runDir}/replaced)`,
              ]
            : []),
          `stop the control plane: move the static-pod manifests from ${paths.manifestsDir} to ${paths.asideManifestsDir}; where crictl reaches the container runtime, stop all but etcd with crictl stop --timeout 2 instead of waiting out kube-apiserver's grace period`,
          `${tool.kind} snapshot restore into ${paths.restoreDir}${tool.bumpRevision ? ' (--bump-revision --mark-compacted)' : ''}`,
          `move the current data dir ${dataDir} to ${paths.asideDataDir} (kept), then ${paths.restoreDir} to ${dataDir}`,
          `start the control plane: the manifests back into ${paths.manifestsDir}, annotated lifeboat/recovery=${runKey} (the kubelet starts them as new pods); wait for etcd and kube-apiserver /readyz`,
          'verify the API: namespaces, nodes and object counts against the backup',
        ];
        return {
          cluster: cluster.name,
          mode: input.mode,
          node: node.name,
          host: node.host,
          targetHostKey: cluster.nodes.some((n) => n.name === node.name) ? undefined : node.hostKey,
          snapshot: {
            manifestKey: choice.manifestKey,
            key: m.snapshot.key,
            created: m.created,
            revision: m.etcd.revision,
            totalKeys: m.etcd.totalKeys,
            plainSize: m.snapshot.plainSize,
            etcdVersion: m.etcd.serverVersion,
            encryptionKeyId: m.snapshot.encryption?.keyId ?? null,
            manifest: authentication,
          },
          skipped: choice.skipped,
          tool,
          ...(tool.bumpRevision ? { revisionBump, knownRevisions } : {}),
          member: {
            name: member.name,
            initialCluster: member.initialCluster,
            initialAdvertisePeerUrls: member.initialAdvertisePeerUrls,
            initialClusterToken: member.initialClusterToken,
          },
          paths,
          freeBytes,
          apiServer: cluster.apiServer ?? `https://${node.host}:6443`,
          steps,
        };
      },
      { signal: cancellationSignal() },
    );
  };
}
