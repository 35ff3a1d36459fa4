import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { formatIssues } from '../config/load';
import { authenticateDocument, signDocument } from '../backup/manifest-auth';
import { manifestAuthSchema } from '../backup/manifest';
import type { TrustRules } from '../backup/trusted-catalog';

/**
 * The report a restore drill writes beside the backup it drilled (`<base>.drill.json`), read back by `backup list`,
 * `backup show` and the health check (when a drill last passed) through this schema: it comes from a bucket, so it is
 * as untrusted as a manifest. Signed like one (its own purpose string), and believed only beside the backup it names.
 */
const PURPOSE = 'lifeboat/drill-report-auth/v1' as const;
export const DRILL_REPORT_FORMAT = 'lifeboat-drill/v1' as const;

const count = z.number().int().nonnegative();
const comparison = z.object({ resource: z.string(), expected: count, actual: count });

export const drillReportSchema = z.object({
  format: z.literal(DRILL_REPORT_FORMAT),
  cluster: z.string().min(1),
  manifestKey: z.string().min(1),
  result: z.enum(['passed', 'failed']),
  started: z.iso.datetime(),
  finished: z.iso.datetime(),
  durationSeconds: z.number().nonnegative(),
  /** What was proven, step by step ("fetched and verified 12 MiB", "etcd 3.6.16 restored ..."). */
  checks: z.array(z.string()),
  /** Each problem found; empty when the drill passed. */
  problems: z.array(z.string()),
  /** "api": counted through a throwaway kube-apiserver; "etcd": keys only (no kube-apiserver binary for this version). */
  countedThrough: z.enum(['api', 'etcd', 'none']),
  /** Where it ran: "worker" or "<drill node> (ssh)" (reports before drill nodes have none: the worker). */
  drillHost: z.string().optional(),
  counts: z.object({ matched: z.array(comparison), differed: z.array(comparison) }),
  /** Objects read one by one and decoded, per resource. */
  sampled: z.record(z.string(), count),
  /** Every certificate the restored control plane would use: the file, and for a kubeconfig's client certificate the kubeconfig and user entry. */
  certificates: z.array(
    z.object({
      file: z.string(),
      kubeconfig: z.string().optional(),
      user: z.string().optional(),
      notAfter: z.string(),
      daysLeft: z.number(),
    }),
  ),
  /** Backups "latest" passed over before this one, with why. */
  passedOver: z.array(z.object({ manifestKey: z.string(), reason: z.string() })),
  workflow: z.object({ workflowId: z.string(), runId: z.string() }),
  engineVersion: z.string(),
  /** Absent where the cluster has no key to sign with (and in reports written before reports were signed). */
  auth: manifestAuthSchema.optional(),
});
export type DrillReport = z.infer<typeof drillReportSchema>;

/** `<base>.manifest.json` -> `<base>.drill.json` */
export function drillReportKeyOf(manifestKey: string): string {
  if (!manifestKey.endsWith('.manifest.json')) throw new Error(`not a manifest key: ${manifestKey}`);
  return `${manifestKey.slice(0, -'.manifest.json'.length)}.drill.json`;
}

export function parseDrillReport(key: string, text: string): DrillReport {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`drill report ${key} is not JSON (${(err as Error).message})`, { cause: err });
  }
  const parsed = drillReportSchema.safeParse(json);
  if (!parsed.success)
    throw new Error(`drill report ${key} is not a usable lifeboat drill report: ${formatIssues(parsed.error.issues).join('; ')}`);
  return parsed.data;
}

/**
 * The drill report of a backup, undefined when it was never drilled. Throws for a report that is not believed: its tag
 * does not match, it is unsigned where the cluster signs, or it names another backup or cluster than where it lies.
 */
export async function readDrillReport(s3: S3Client, rules: TrustRules, manifestKey: string): Promise<DrillReport | undefined> {
  const key = drillReportKeyOf(manifestKey);
  let text: string;
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: rules.storage.bucket, Key: key }));
    text = await res.Body!.transformToString('utf8');
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404 || (err as Error).name === 'NoSuchKey') return undefined;
    throw err;
  }
  const auth = await authenticateDocument(text, rules.loadKey, PURPOSE);
  if (auth.status === 'forged' || auth.status === 'unverifiable') throw new Error(`drill report ${key} cannot be trusted: ${auth.reason}`);
  if (auth.status === 'unsigned' && rules.signsManifests) throw new Error(`drill report ${key} is not signed`);
  const report = parseDrillReport(key, text);
  if (report.manifestKey !== manifestKey || report.cluster !== rules.cluster)
    throw new Error(`drill report ${key} is of ${report.cluster}'s backup ${report.manifestKey}, not of this one: copied, so not believed`);
  return report;
}

/** Writes a report beside the backup it drilled, signed with the cluster's key where it has one. */
export async function writeDrillReport(
  s3: S3Client,
  bucket: string,
  report: DrillReport,
  signWith?: { key: Buffer; keyId: string },
): Promise<string> {
  const key = drillReportKeyOf(report.manifestKey);
  drillReportSchema.parse(report);
  const body = signWith ? signDocument(report, signWith.key, signWith.keyId, PURPOSE) : report;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(body, null, 2), ContentType: 'application/json' }));
  return key;
}

/** "drilled" column of `backup list`: when and how the last drill of a backup went. */
export function drilledColumn(report: DrillReport | undefined): string {
  if (!report) return 'never';
  return `${report.result === 'passed' ? 'ok' : 'FAILED'} ${report.finished.slice(0, 10)}`;
}

/**
 * When the cluster's newest passed drill finished, from the reports in the bucket (newest written first; a few
 * read at most), so the metric survives a worker restart. Undefined when none of them passed.
 */
export async function lastPassedDrill(
  s3: S3Client,
  rules: TrustRules,
  objects: { key: string; lastModified?: Date }[],
): Promise<DrillReport | undefined> {
  const reports = objects
    .filter((o) => o.key.endsWith('.drill.json'))
    .sort((a, b) => (b.lastModified?.getTime() ?? 0) - (a.lastModified?.getTime() ?? 0));
  for (const o of reports.slice(0, 5)) {
    try {
      const report = await readDrillReport(s3, rules, `${o.key.slice(0, -'.drill.json'.length)}.manifest.json`);
      if (report?.result === 'passed') return report;
    } catch {
      // unreadable or not believed: the next one
    }
  }
  return undefined;
}
