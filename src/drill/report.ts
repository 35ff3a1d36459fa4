import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { formatIssues } from '../config/load';

/**
 * The report a restore drill writes beside the backup it drilled (`<base>.drill.json`), read back by `backup list`
 * and `backup show` through this schema: it comes from a bucket, so it is as untrusted as a manifest.
 */
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

/** The drill report of a backup, undefined when it was never drilled. */
export async function readDrillReport(s3: S3Client, bucket: string, manifestKey: string): Promise<DrillReport | undefined> {
  const key = drillReportKeyOf(manifestKey);
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return parseDrillReport(key, await res.Body!.transformToString('utf8'));
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404 || (err as Error).name === 'NoSuchKey') return undefined;
    throw err;
  }
}

export async function writeDrillReport(s3: S3Client, bucket: string, report: DrillReport): Promise<string> {
  const key = drillReportKeyOf(report.manifestKey);
  drillReportSchema.parse(report);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(report, null, 2), ContentType: 'application/json' }));
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
  bucket: string,
  objects: { key: string; lastModified?: Date }[],
): Promise<DrillReport | undefined> {
  const reports = objects
    .filter((o) => o.key.endsWith('.drill.json'))
    .sort((a, b) => (b.lastModified?.getTime() ?? 0) - (a.lastModified?.getTime() ?? 0));
  for (const o of reports.slice(0, 5)) {
    try {
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.key }));
      const report = parseDrillReport(o.key, await res.Body!.transformToString('utf8'));
      if (report.result === 'passed') return report;
    } catch {
      // unreadable: the next one
    }
  }
  return undefined;
}
