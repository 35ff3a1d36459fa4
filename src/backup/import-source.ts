/**
 * What `lifeboat backup import` can tell about a snapshot from its name and where it sits, before reading it. Pure.
 */

/**
 * The plain kubeadm runbook names snapshots with `date +%F-%H-%M` (2026-11-25-09-45, perhaps with a prefix such as
 * `etcd-snapshot-` and a suffix such as `.db`): that is when it was taken, to the minute. The runbook's `date` runs in
 * the node's time zone, which on servers is almost always UTC; it is read as UTC (and the manifest says where
 * `created` came from).
 */
export function createdFromName(keyOrFile: string): string | undefined {
  const base = keyOrFile.split('/').pop() ?? '';
  const m = /(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})(?!\d)/.exec(base);
  if (!m) return undefined;
  const [, y, mo, d, h, mi] = m.map(Number);
  const t = Date.UTC(y, mo - 1, d, h, mi);
  const date = new Date(t);
  // Date.UTC rolls 2026-02-31 over into March: a name that is no real time is not a time.
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59) return undefined;
  return date.toISOString();
}

/** Where staged local files wait in the bucket (`backup import <cluster> <file>`): outside <cluster>/etcd/, so no listing or retention sees them. */
export function importStagingPrefix(prefix: string, cluster: string): string {
  return `${prefix ? `${prefix}/` : ''}${cluster}/import-staging/`;
}
