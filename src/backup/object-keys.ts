import { toRevision, type RevisionLike } from '../etcd/revision';
/**
 * Backup objects are named `<prefix>/<cluster>/etcd/<UTC timestamp>-rev<revision>.<part>`, so a plain listing sorts
 * them by time and a human can tell what each is without opening it.
 */
export type Compression = 'gzip' | 'zstd' | 'none';

export interface BackupObjectKeys {
  base: string;
  snapshot: string;
  controlPlaneFiles: string;
  manifest: string;
}

/** 2026-11-25T09:45:12.345Z -> 20261125T094512Z */
export function compactTimestamp(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) throw new Error(`not a timestamp: ${iso}`);
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

export function compressionSuffix(c: Compression): string {
  return c === 'gzip' ? '.gz' : c === 'zstd' ? '.zst' : '';
}

export function clusterBackupPrefix(prefix: string, cluster: string): string {
  return `${prefix ? `${prefix}/` : ''}${cluster}/etcd/`;
}

export function backupObjectKeys(o: {
  prefix: string;
  cluster: string;
  takenAt: string;
  revision: RevisionLike;
  compression: Compression;
  encrypted: boolean;
}): BackupObjectKeys {
  const base = `${clusterBackupPrefix(o.prefix, o.cluster)}${compactTimestamp(o.takenAt)}-rev${toRevision(o.revision)}`;
  const enc = o.encrypted ? '.enc' : '';
  return {
    base,
    snapshot: `${base}.db${compressionSuffix(o.compression)}${enc}`,
    controlPlaneFiles: `${base}.control-plane.tar${compressionSuffix(o.compression)}${enc}`,
    manifest: `${base}.manifest.json`,
  };
}

/** The manifest key for a given snapshot or archive key (they share the base). */
export function manifestKeyOf(objectKey: string): string {
  const m = /^(.*-rev\d+)\.(db|control-plane\.tar|manifest\.json|drill\.json)/.exec(objectKey);
  if (!m) throw new Error(`not a lifeboat backup key: ${objectKey}`);
  return `${m[1]}.manifest.json`;
}
