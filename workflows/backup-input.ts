import type { BackupClusterInput } from './backup-cluster';
import { objectProblem, unknownFields, type Shape } from './input-shape';

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const MAX_REASON = 500;
const SHAPE: Shape = {
  at: 'input',
  fields: ['cluster', 'retentionDryRun', 'reason', 'allowRevisionRegression'],
  example: '{"cluster": "prod"}',
  maxChars: 16_384,
};

/**
 * The backup workflow's input, checked before anything runs: schedules, the CLI, the Temporal UI's start form and
 * scripts all start it, and a malformed input must fail the run with a message naming the field, never wedge its
 * workflow task (a task that throws a TypeError is retried forever and the run stays RUNNING).
 * Pure: imported by the workflow.
 */
export function backupInputProblems(input: BackupClusterInput): string[] {
  const bad = objectProblem(input, SHAPE);
  if (bad) return [bad];
  const problems: string[] = [];
  if (typeof input.cluster !== 'string' || !NAME.test(input.cluster))
    problems.push('cluster: expected a cluster name from the config (lowercase letters, digits, "-", at most 63)');
  if (input.retentionDryRun !== undefined && typeof input.retentionDryRun !== 'boolean')
    problems.push('retentionDryRun: expected true or false');
  if (input.reason !== undefined && (typeof input.reason !== 'string' || input.reason.length > MAX_REASON))
    problems.push(`reason: expected text of at most ${MAX_REASON} characters`);
  if (input.allowRevisionRegression !== undefined && typeof input.allowRevisionRegression !== 'boolean')
    problems.push('allowRevisionRegression: expected true or false (true only to store a backup of an etcd reset on purpose)');
  problems.push(...unknownFields(input, SHAPE));
  return problems;
}
