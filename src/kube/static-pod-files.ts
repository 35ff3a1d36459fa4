import { posix } from 'node:path';
import { parse } from 'yaml';
import type { ClusterConfig } from '../config/schema';
import { flagListOf } from '../etcd/static-pod';

/**
 * The host files a static-pod manifest makes its component read (certificates, kubeconfigs, an encryption config, an
 * audit policy...), and where the backup's control-plane archive keeps each: the backup archives them, the drill
 * checks they are there, a new node gets them back.
 */
/** A flag whose value is a file the component reads (kubeadm's and the usual extras: encryption, audit, authn/z). */
const FILE_FLAG = /(file|config|kubeconfig|certificate|key|cafile|certfile|keyfile)$/;
const NOT_A_FILE_FLAG = /(dir|log-path|-url|-urls)$/;

/**
 * File flags a component reads every value of when they are given more than once (pflag string arrays, named
 * certificate pairs); of any other flag given twice, the component uses the last value (see flagsOf).
 */
export const REPEATABLE_FILE_FLAGS: ReadonlySet<string> = new Set(['service-account-key-file', 'tls-sni-cert-key']);

/** The files one flag value names: `--tls-sni-cert-key=<cert>,<key>[:<names>]` names two, the others one. */
function filesOfValue(flag: string, value: string): string[] {
  if (flag !== 'tls-sni-cert-key') return [value];
  const m = /^([^,]+),([^:]+)(?::.*)?$/.exec(value);
  return m ? [m[1], m[2]] : [value];
}

export interface PodManifest {
  spec?: {
    containers?: { command?: string[]; args?: string[]; volumeMounts?: { name: string; mountPath: string }[] }[];
    volumes?: { name: string; hostPath?: { path: string; type?: string } }[];
  };
}

/**
 * The host files one static-pod manifest references: file flags mapped through its hostPath mounts, and File volumes.
 * Every occurrence of a flag counts: a flag given twice names two files, both archived and checked.
 */
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
    for (const [flag, value] of flagListOf([...(c.command ?? []), ...(c.args ?? [])])) {
      if (!FILE_FLAG.test(flag) || NOT_A_FILE_FLAG.test(flag)) continue;
      for (const file of filesOfValue(flag, value)) if (file.startsWith('/')) out.push({ flag, hostPath: toHost(file) });
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

/** Where an archive path was on the node: archivePathOf the other way round. */
export function hostPathOf(cluster: ClusterConfig, archivePath: string): string {
  const p = cluster.paths;
  for (const root of [p.pkiDir, p.manifestsDir, p.kubeletDir]) {
    const rel = posix.basename(root);
    if (archivePath === rel || archivePath.startsWith(`${rel}/`)) return posix.join(root, archivePath.slice(rel.length));
  }
  return posix.join(p.kubernetesDir, archivePath);
}
