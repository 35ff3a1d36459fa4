import { ApplicationFailure } from '@temporalio/common';
import { restoredRevisionOf, type RecoveryPlan } from '../../src/recovery/plan';
import type { Revision } from '../../src/etcd/revision';
import type { ActivityDeps } from '../deps';
import { etcdctl, parseCounts, registryCountCommand } from '../../src/etcd/commands';
import { apiClientFor } from './api-client';
import { kubeletNodeName, waitForNodeReady, type NodeReadiness } from './kubelet';
import { onTarget, planManifest } from './on-target';
import { whileHeartbeating } from '../heartbeat';

/**
 * Resources whose count the restarted control plane changes on its own within seconds (its own leases, events,
 * endpoints): reported, never a reason to fail. Everything else must match the backup exactly.
 */
export const VOLATILE_RESOURCES = new Set([
  'events',
  'events.k8s.io',
  'leases',
  'masterleases',
  'endpointslices',
  'services',
  'ranges',
  'pods',
  'replicasets',
  'controllerrevisions',
  'apiregistration.k8s.io',
  'flowschemas',
  'prioritylevelconfigurations',
  'clusterroles',
  'clusterrolebindings',
  'roles',
  'rolebindings',
]);
export const STRICT_RESOURCES = [
  'namespaces',
  'configmaps',
  'deployments',
  'statefulsets',
  'daemonsets',
  'customresourcedefinitions',
  'persistentvolumes',
  'persistentvolumeclaims',
];

export interface CountComparison {
  resource: string;
  expected: number;
  actual: number;
  strict: boolean;
}

export interface ApiVerification {
  apiServer: string;
  namespaces: string[];
  nodes: string[];
  matched: CountComparison[];
  differed: CountComparison[];
  staleNodesRemoved: string[];
  /** new-node: the control-plane Node, Ready and reported by the new machine's kubelet (./kubelet.ts). */
  controlPlaneNode?: NodeReadiness;
}

/** How long verify waits for a new node's kubelet to report its Node Ready (it renews its lease every 10 s). */
const NODE_READY_TIMEOUT_MS = 75_000; // within the activity's 2 minutes

/**
 * Proves the API is back: namespaces and nodes list through it, and the number of objects per resource in etcd
 * matches what the backup recorded. A strict resource that differs fails the workflow, with the comparison as evidence.
 */
export function verifyApi(deps: ActivityDeps) {
  return (input: { plan: RecoveryPlan }): Promise<ApiVerification> =>
    // Heartbeating throughout: a worker lost mid-verify is noticed within the heartbeat timeout (it is read-only, so
    // the retry simply verifies again).
    whileHeartbeating(
      () => ({ step: 'verify' }),
      () => verify(deps, input),
    );
}

function verify(deps: ActivityDeps, input: { plan: RecoveryPlan }): Promise<ApiVerification> {
  return onTarget(deps, input.plan, async (s) => {
    const manifest = await planManifest(deps, s, input.plan);
    const api = await apiClientFor(s, input.plan);
    const namespaces = (await api.list('/api/v1/namespaces')).map((n) => n.metadata.name);
    const nodes = (await api.list('/api/v1/nodes')).map((n) => n.metadata.name);
    // Counted at the revision the restore produced, so what the restarted control plane writes on its own in
    // its first seconds (kube-apiserver's bootstrap ConfigMaps, say) is not mistaken for a wrong restore.
    // Compacted since (a restore verified much later): the current counts.
    const restoredAt = restoredRevisionOf(input.plan);
    const count = (rev?: Revision) =>
      s.run(
        registryCountCommand((...args) => etcdctl(s.cluster, ...args), rev),
        { allowFailure: true },
      );
    let counted = await count(restoredAt);
    if (counted.code !== 0) counted = await count();
    if (counted.code !== 0)
      throw new Error(`counting keys in etcd on node "${s.node.name}" failed: ${counted.stderr.trim().split('\n').pop()}`);
    const now = parseCounts(counted.stdout);
    const matched: CountComparison[] = [];
    const differed: CountComparison[] = [];
    for (const resource of new Set([...Object.keys(manifest.resourceCounts), ...STRICT_RESOURCES.filter((r) => r in now)])) {
      const c = {
        resource,
        expected: manifest.resourceCounts[resource] ?? 0,
        actual: now[resource] ?? 0,
        strict: !VOLATILE_RESOURCES.has(resource),
      };
      (c.expected === c.actual ? matched : differed).push(c);
    }
    const staleNodesRemoved: string[] = [];
    if (s.cluster.recovery.removeStaleNodes) {
      const known = new Set(s.cluster.nodes.map((n) => n.name));
      for (const node of await api.list('/api/v1/nodes')) {
        const cp = node.metadata.labels?.['node-role.kubernetes.io/control-plane'] !== undefined;
        if (cp && !known.has(node.metadata.name) && node.metadata.name !== input.plan.node) {
          await api.delete(`/api/v1/nodes/${encodeURIComponent(node.metadata.name)}`);
          // Its heartbeat lease goes with it; already gone is fine (a retried attempt, or no kubelet ever ran).
          await api
            .delete(`/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${encodeURIComponent(node.metadata.name)}`)
            .catch((err: { status?: number }) => {
              if (err.status !== 404) throw err;
            });
          staleNodesRemoved.push(node.metadata.name);
        }
      }
    }
    // A new node's kubelet got the old one's identity in the fetch step: it must come back as the same, Ready,
    // Node (without the kubelet's files in the backup there is nothing to wait for: the fetch step said so).
    const controlPlaneNode =
      input.plan.mode === 'new-node' && (await s.exists(`${s.cluster.paths.kubeletDir}/config.yaml`))
        ? await waitForNodeReady(api, await kubeletNodeName(s), NODE_READY_TIMEOUT_MS)
        : undefined;
    const result: ApiVerification = {
      apiServer: api.server,
      namespaces,
      nodes,
      matched,
      differed,
      staleNodesRemoved,
      ...(controlPlaneNode ? { controlPlaneNode } : {}),
    };
    const failures = differed.filter((d) => d.strict);
    if (namespaces.length === 0 || failures.length > 0) {
      throw ApplicationFailure.nonRetryable(
        `the restored API does not match the backup: ${failures.map((f) => `${f.resource} ${f.actual} (backup: ${f.expected})`).join(', ') || 'no namespaces'}`,
        'VerificationFailed',
        result,
      );
    }
    if (controlPlaneNode && !controlPlaneNode.ready) {
      throw ApplicationFailure.nonRetryable(
        `the API is restored, but Node "${controlPlaneNode.node}" is not Ready after ${controlPlaneNode.waitedSeconds} s (${controlPlaneNode.detail}): look at the kubelet on node "${s.node.name}" (journalctl -u kubelet)`,
        'VerificationFailed',
        result,
      );
    }
    return result;
  });
}
