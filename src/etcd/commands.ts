import type { Revision } from './revision';
import type { ClusterConfig } from '../config/schema';
import { command } from '../ssh/quote';

/** etcdctl with endpoints and client certificates, as given (the node's settings, or direct mode's on the worker). */
export function etcdctlWith(
  c: { etcdctl: string; endpoints: string; caFile: string; certFile: string; keyFile: string },
  ...args: string[]
): string[] {
  return [c.etcdctl, `--endpoints=${c.endpoints}`, `--cacert=${c.caFile}`, `--cert=${c.certFile}`, `--key=${c.keyFile}`, ...args];
}

/** etcdctl against the node's local endpoint with the node's client certificates (kubeadm paths by default). */
export function etcdctl(cluster: ClusterConfig, ...args: string[]): string[] {
  return etcdctlWith({ ...cluster.etcd, endpoints: cluster.etcd.endpoint }, ...args);
}

/**
 * A command printing "<resource> <count>" for every /registry/<resource>/ prefix, counted on the node so only
 * the totals cross the wire; at revision `rev` when given. bash for pipefail: a failed etcdctl must not read as zero.
 */
export function registryCountCommand(etcdctlFor: (...args: string[]) => string[], rev?: Revision): string[] {
  const get = command(etcdctlFor('get', '/registry/', '--prefix', '--keys-only', ...(rev ? [`--rev=${rev}`] : [])));
  return ['bash', '-c', `set -o pipefail; ${get} | awk -F/ 'NF >= 3 && $3 != "" { c[$3]++ } END { for (k in c) print k, c[k] }'`];
}

/** "configmaps 12\nsecrets 3" -> { configmaps: 12, secrets: 3 } */
export function parseCounts(stdout: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of stdout.split('\n')) {
    const [name, n] = line.trim().split(/\s+/);
    if (name && n && /^\d+$/.test(n)) counts[name] = Number(n);
  }
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * Shell text hashing stdin (or the files given as "$@") with SHA-256, printing "<hex> ..." like sha256sum. OpenSSL
 * first: coreutils' sha256sum (Debian 12's 9.1) does not use the CPU's SHA instructions and runs at about a sixth
 * of its speed, which on a 1 GiB snapshot is seconds of a restore.
 */
export const SHA256_SHELL = 'if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r "$@"; else sha256sum "$@"; fi';
