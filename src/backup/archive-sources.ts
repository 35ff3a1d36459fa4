import { posix } from 'node:path';
import type { ClusterConfig } from '../config/schema';
import { referencedHostFiles } from '../kube/static-pod-files';
import { KUBELET_FILES } from '../recovery/kubelet-identity';

/** One path the control-plane archive holds: `name` (a file or folder) relative to `dir`, as tar's `-C dir name`. */
export interface ArchiveSource {
  dir: string;
  name: string;
}

/** The kubeconfigs kubeadm writes next to the manifests; those present are archived. */
export const KUBECONFIGS = ['admin.conf', 'super-admin.conf', 'controller-manager.conf', 'scheduler.conf', 'kubelet.conf'];

/** What every backup archives: kubeadm's PKI, the static-pod manifests, its kubeconfigs and the kubelet's identity. */
export function archiveSources(cluster: ClusterConfig): ArchiveSource[] {
  const p = cluster.paths;
  return [
    { dir: posix.dirname(p.pkiDir), name: posix.basename(p.pkiDir) },
    { dir: posix.dirname(p.manifestsDir), name: posix.basename(p.manifestsDir) },
    ...KUBECONFIGS.map((name) => ({ dir: p.kubernetesDir, name })),
    // The kubelet's identity and settings: a new node's kubelet comes back as the same Node (src/recovery/kubelet-identity.ts).
    ...KUBELET_FILES.map((f) => ({ dir: posix.dirname(p.kubeletDir), name: `${posix.basename(p.kubeletDir)}/${f}` })),
  ];
}

/**
 * The files the static-pod manifests reference that the fixed list misses — an `--encryption-provider-config` in
 * /etc/kubernetes/enc, an audit policy — so that a node rebuilt from the backup can start its API server and read its
 * Secrets. Those under the kubernetes dir are archived at their place in it (a new node gets them back where they
 * were); those elsewhere on the node are named, not archived (`outside`), and a drill fails on them.
 */
export function referencedSources(
  cluster: ClusterConfig,
  manifests: string[],
  sources: ArchiveSource[],
): { extra: ArchiveSource[]; outside: string[] } {
  const k8s = cluster.paths.kubernetesDir;
  const covered = (path: string) => sources.some((s) => path === `${s.dir}/${s.name}` || path.startsWith(`${s.dir}/${s.name}/`));
  const extra = new Map<string, ArchiveSource>();
  const outside = new Set<string>();
  for (const text of manifests) {
    let refs: { hostPath: string }[];
    try {
      refs = referencedHostFiles(text);
    } catch {
      continue; // a manifest that does not parse is archived as it is; the drill names it
    }
    for (const { hostPath } of refs) {
      const path = posix.normalize(hostPath);
      if (covered(path)) continue;
      if (path.startsWith(`${k8s}/`)) extra.set(path, { dir: k8s, name: path.slice(k8s.length + 1) });
      else outside.add(path);
    }
  }
  return { extra: [...extra.values()], outside: [...outside].sort() };
}
