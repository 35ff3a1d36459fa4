import { statfs } from 'node:fs/promises';
import type { BackupManifest } from '../backup/manifest';

/** etcd preallocates its first WAL segment at full size when it restores (wal.SegmentSizeBytes). */
const WAL_SEGMENT_BYTES = 64_000_000;

/**
 * Room a drill needs in its scratch dir: the snapshot file, the data dir etcd restores from it (about as large, plus a
 * preallocated WAL segment), and the unpacked control-plane archive, with a tenth to spare. Checked before the fetch, so a drill on a full disk says
 * so at once instead of failing half way with ENOSPC (and filling the worker's disk for everything else on it).
 */
export function drillSpaceNeeded(m: BackupManifest): number {
  return Math.ceil((2 * m.snapshot.plainSize + WAL_SEGMENT_BYTES + (m.controlPlaneFiles?.plainSize ?? 0)) * 1.1);
}

export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}
