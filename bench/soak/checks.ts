import { Writable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { listObjects } from '../../src/backup/catalog';
import { clusterBackupPrefix } from '../../src/backup/object-keys';
import { readStoredObject } from '../../src/backup/read-object';
import { manifestKeysNewestFirst, readTrustedBackup, type TrustRules } from '../../src/backup/trusted-catalog';
import { compareRevisions, type Revision } from '../../src/etcd/revision';
import { historyText } from '../../test/support/history';
import type { AckedWrite } from './writer';
import type { RunInfo } from './runs';

/**
 * The acknowledged writes the cluster no longer holds though it must. Within an epoch (the time between two
 * destructions) a write must be there when its revision is at or below what that epoch's end made durable:
 * `requiredThrough` of the epoch (for a destroyed epoch the newer of the durable point seen just before the
 * destruction and the point the recovery restored; for the last epoch the newest durable point at the end). Keys are
 * never rewritten, so "there" means the key with the value written.
 */
export function lostWrites(
  acked: readonly AckedWrite[],
  requiredThrough: ReadonlyMap<number, Revision>,
  held: ReadonlyMap<string, string>,
) {
  return acked.filter((w) => {
    const through = requiredThrough.get(w.epoch);
    return through !== undefined && compareRevisions(w.revision, through) <= 0 && held.get(w.key) !== w.value;
  });
}

/** The newer of two revisions, either of which may be missing. */
export function newer(a: Revision | undefined, b: Revision | undefined): Revision | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compareRevisions(a, b) >= 0 ? a : b;
}

const discard = () =>
  new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });

/**
 * Every backup manifest of the cluster in the bucket, read back as a restore reads it: believed (signature, place),
 * and each object it names there, with its stored and original bytes hashing to what it recorded. Problems, by key.
 */
export async function verifyBackups(s3: S3Client, rules: TrustRules, key: Buffer): Promise<{ verified: number; problems: string[] }> {
  const objects = await listObjects(s3, rules.storage.bucket, clusterBackupPrefix(rules.storage.prefix, rules.cluster));
  const { keys, foreign } = manifestKeysNewestFirst(objects);
  const problems = foreign.map((k) => `${k}: not a lifeboat manifest key`);
  let verified = 0;
  for (const manifestKey of keys) {
    try {
      const { manifest } = await readTrustedBackup(s3, rules, manifestKey);
      for (const obj of [manifest.snapshot, ...(manifest.controlPlaneFiles ? [manifest.controlPlaneFiles] : [])])
        await readStoredObject(s3, rules.storage.bucket, obj, () => key, discard());
      verified++;
    } catch (err) {
      problems.push(`backup ${manifestKey}: ${(err as Error).message}`);
    }
  }
  return { verified, problems };
}

/** Where any of the secrets shows up: in a workflow history (payloads decoded) or in one of the files. */
export async function secretLeaks(
  client: Client,
  runs: readonly RunInfo[],
  secrets: Record<string, string>,
  files: { name: string; text: string }[],
): Promise<string[]> {
  const leaks: string[] = [];
  const look = (where: string, text: string) => {
    for (const [name, secret] of Object.entries(secrets)) if (text.includes(secret)) leaks.push(`${name} in ${where}`);
  };
  for (const r of runs)
    look(`the history of ${r.workflowId} (${r.runId})`, historyText(await client.workflow.getHandle(r.workflowId, r.runId).fetchHistory()));
  for (const f of files) look(f.name, f.text);
  return leaks;
}

/** A fault's time on the clock, with a grace after it for what it disturbed to get back on its feet. */
export interface FaultWindow {
  kind: string;
  startedAt: Date;
  endedAt: Date;
}

/** Runs that ended badly (failed, timed out, terminated) without overlapping a fault's window (plus grace). */
export function failuresOutsideFaults(runs: readonly RunInfo[], faults: readonly FaultWindow[], graceMs: number): RunInfo[] {
  const bad = new Set(['FAILED', 'TIMED_OUT', 'TERMINATED']);
  return runs.filter((r) => {
    if (!bad.has(r.status)) return false;
    const end = (r.closeTime ?? new Date()).getTime();
    return !faults.some((f) => r.startTime.getTime() <= f.endedAt.getTime() + graceMs && end >= f.startedAt.getTime());
  });
}
