import { ConfigError } from '../config/load';
import type { ClusterConfig, NodeConfig } from '../config/schema';
import { durationMs } from '../schedules/backup-schedules';
import { withSession } from '../ssh/session';
import { describeLocation } from '../storage/s3-client';
import { probeApiserver } from './apiserver-probe';
import { ChainTipError } from '../continuous/capture';
import { continuousLag } from './continuous-lag';
import { newestBackup } from './newest-backup';
import { probeNode, type NodeProbeResult } from './node-probe';
import { COMPONENTS, type ComponentHealth, type HealthReport } from './types';

export interface HealthCheckOptions {
  /** The key ring: the newest backup counts only if its manifest's tag matches (src/backup/trusted-catalog.ts). */
  loadKey: (keyId: string) => Promise<Buffer>;
  /** Node to probe (default: the cluster's first node, its control plane). */
  node?: string;
  /** Each probe's timeout; default `health.timeout` of the cluster (5 s). */
  timeoutMs?: number;
  /** Aborts the SSH connection attempt (activity cancellation). */
  signal?: AbortSignal;
  now?: () => Date;
}

/**
 * The cluster CA per cluster and node, kept from the last check that reached the node: when SSH is down the API
 * server is still probed with TLS verified (the CA changes only with a new cluster).
 */
const knownCa = new Map<string, string>();

function nodeOf(cluster: ClusterConfig, name: string | undefined): NodeConfig {
  if (name === undefined) return cluster.nodes[0];
  const node = cluster.nodes.find((n) => n.name === name);
  if (!node)
    throw new ConfigError('node', [
      `cluster "${cluster.name}" has no node "${name}": known nodes are ${cluster.nodes.map((n) => n.name).join(', ')}`,
    ]);
  return node;
}

/**
 * One health check of a cluster's control plane: over one SSH session to the node (host key pinned) the cluster CA,
 * then one batched remote command (etcd, scheduler, controller-manager, disk, certificates) side by side with the
 * API server's /livez and /readyz from here; the newest backup from the bucket meanwhile. Every probe is bounded by
 * the timeout, and nothing here throws for a component that is down or a node that cannot be reached: it is in the
 * report. Only a config error (unknown node) throws.
 */
export async function checkClusterHealth(cluster: ClusterConfig, o: HealthCheckOptions): Promise<HealthReport> {
  const now = o.now ?? (() => new Date());
  const checkedAt = now();
  const node = nodeOf(cluster, o.node);
  const timeoutMs = o.timeoutMs ?? (durationMs(cluster.health.timeout) || 5000);
  const timeoutSeconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  const apiServer = cluster.apiServer ?? `https://${node.host}:6443`;
  const caKey = `${cluster.name}/${node.name}`;
  const problems: string[] = [];

  const nodeSide = (async (): Promise<{ node: ComponentHealth; probe?: NodeProbeResult; api: ComponentHealth; nodeProblem?: string }> => {
    let connected = false;
    try {
      return await withSession(
        node,
        async (s) => {
          connected = true;
          const endpoint = `${node.user}@${node.host}:${node.port}`;
          // The CA first (one quick command), so the API probe runs alongside the node's batch, not after it.
          const ca = await Promise.race([
            s
              .run(['cat', '--', `${cluster.paths.pkiDir}/ca.crt`], { allowFailure: true })
              .then((r) => (r.code === 0 && r.stdout.includes('BEGIN CERTIFICATE') ? `${r.stdout.trim()}\n` : undefined)),
            new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), timeoutMs).unref()),
          ]);
          if (ca) knownCa.set(caKey, ca);
          const [probe, api] = await Promise.all([
            probeNode(s, cluster, timeoutSeconds, timeoutMs * 2 + 2000),
            probeApiserver(apiServer, ca ?? knownCa.get(caKey), timeoutMs),
          ]);
          if (!probe)
            return {
              node: { component: 'node', up: true, detail: `ssh ${endpoint} ok` },
              api,
              nodeProblem: `node probe: no answer within ${Math.round((timeoutMs * 2 + 2000) / 1000)} s`,
            };
          return { node: { component: 'node', up: true, detail: `ssh ${endpoint} ok` }, probe, api };
        },
        { readyTimeoutMs: timeoutMs, signal: o.signal },
      );
    } catch (err) {
      if (connected) throw err;
      const api = await probeApiserver(apiServer, knownCa.get(caKey), timeoutMs);
      return { node: { component: 'node', up: false, detail: (err as Error).message }, api };
    }
  })();

  let unreadBackup: string | undefined;
  const bucketSide = newestBackup(cluster, o.loadKey, Math.max(timeoutMs * 2, 10_000), checkedAt).then(
    (b) => {
      if (!b) problems.push(`backups: none found for cluster "${cluster.name}" in ${describeLocation(cluster.storage)}`);
      return b;
    },
    (err: Error) => {
      unreadBackup = `cannot read ${describeLocation(cluster.storage)}: ${err.message}`;
      problems.push(`backups: ${unreadBackup}`);
      return undefined;
    },
  );

  const [n, backup] = await Promise.all([nodeSide, bucketSide]);
  // After the node's probe: etcd's revision says whether the newest segment is behind anything.
  const continuous = cluster.backup.continuous
    ? await continuousLag(cluster, o.loadKey, n.probe?.etcdStats?.revision, now(), Math.max(timeoutMs * 2, 10_000)).catch((err: Error) => ({
        problem:
          err instanceof ChainTipError ? err.message : `cannot read the chains in ${describeLocation(cluster.storage)}: ${err.message}`,
      }))
    : undefined;
  const unreachable = (component: ComponentHealth['component'], detail: string): ComponentHealth => ({ component, up: false, detail });
  const why = !n.node.up ? 'node unreachable' : (n.nodeProblem ?? 'node probe failed');
  const byComponent = new Map<string, ComponentHealth>([
    ['kube-apiserver', n.api],
    ['etcd', n.probe?.etcd ?? unreachable('etcd', why)],
    ['kube-scheduler', n.probe?.scheduler ?? unreachable('kube-scheduler', why)],
    ['kube-controller-manager', n.probe?.controllerManager ?? unreachable('kube-controller-manager', why)],
    ['node', n.node],
  ]);
  const components = COMPONENTS.map((c) => byComponent.get(c)!);
  const componentProblems = components.filter((c) => !c.up).map((c) => `${c.component} down on node ${node.name}: ${c.detail}`);
  const nowMs = now().getTime();
  const expired = (n.probe?.certificates ?? [])
    .filter((c) => Date.parse(c.notAfter) <= nowMs)
    .map((c) => `certificate ${c.name} (${c.path}) expired at ${c.notAfter}`);
  return {
    cluster: cluster.name,
    node: node.name,
    checkedAt: checkedAt.toISOString(),
    components,
    etcd: n.probe?.etcdStats,
    disk: n.probe?.disk,
    certificates: n.probe?.certificates ?? [],
    newestBackup: backup,
    ...(continuous ? { continuous } : {}),
    ...(unreadBackup ? { unread: { newestBackup: unreadBackup } } : {}),
    problems: [
      ...componentProblems,
      ...(n.nodeProblem ? [n.nodeProblem] : []),
      ...(n.probe?.problems ?? []),
      ...expired,
      ...problems,
      ...(continuous?.problem ? [`continuous backups: ${continuous.problem}`] : []),
    ],
  };
}
