import { posix } from 'node:path';
import { parse } from 'yaml';
import type { ClusterConfig } from '../config/schema';
import { flagsOf } from '../etcd/static-pod';

/**
 * The host files a static-pod manifest makes its component read (certificates, kubeconfigs, an encryption config, an
 * audit policy...), and where the backup's control-plane archive keeps each: the backup archives them, the drill
 * checks they are there, a new node gets them back.
 */
/** A flag whose value is a file the component reads (kubeadm's and the usual extras: encryption, audit, authn/z). */
const FILE_FLAG = /(file|config|kubeconfig|certificate|key|cafile|certfile|keyfile)$/;
const NOT_A_FILE_FLAG = /(dir|log-path|-url|-urls)$/;

export interface PodManifest {
  spec?: {
    containers?: { command?: string[]; args?: string[]; volumeMounts?: { name: string; mountPath: string }[] }[];
    volumes?: { name: string; hostPath?: { path: string; type?: string } }[];
  };
}

/** The host files one static-pod manifest references: file flags mapped through its hostPath mounts, and File volumes. */
export function referencedHostFiles(text: string): { flag: string; hostPath: string }[] {
  const pod = parse(text) as PodManifest;
  const out: { flag: string; hostPath: string }[] = [];
  for (const c of pod?.spec?.containers ?? []) {
    const toHost = (p: string) => {
      const mount = (c.volumeMounts ?? [])
        .filter((m) => p === m.mountPath || p.startsWith(`${m.mountPath.replace(/\/$/, '')}/`))
        .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
      const host = mount ? pod.spec?.volumes?.find((v) => v.name === mount.name)?.hostPath?.path : undefined;
      return host && mount ? posix.join(host, p.slice(mount.mountPath.length)) : p;
    };
    for (const [flag, value] of flagsOf([...(c.command ?? []), ...(c.args ?? [])])) {
      if (value.startsWith('/') && FILE_FLAG.test(flag) && !NOT_A_FILE_FLAG.test(flag)) out.push({ flag, hostPath: toHost(value) });
    }
  }
  for (const v of pod?.spec?.volumes ?? []) {
    if (v.hostPath && /^File/.test(v.hostPath.type ?? '')) out.push({ flag: `volume ${v.name}`, hostPath: v.hostPath.path });
  }
  return out;
}

/** Where a node path lives in the archive, or undefined when the backup does not archive that folder. */
export function archivePathOf(cluster: ClusterConfig, hostPath: string): string | undefined {
  const p = cluster.paths;
  const roots: [string, string][] = [
    [p.pkiDir, posix.basename(p.pkiDir)],
    [p.manifestsDir, posix.basename(p.manifestsDir)],
    [p.kubeletDir, posix.basename(p.kubeletDir)],
    [p.kubernetesDir, ''],
  ];
  for (const [root, rel] of roots) {
    if (hostPath.startsWith(`${root}/`)) return posix.join(rel, hostPath.slice(root.length + 1));
  }
  return undefined;
}
