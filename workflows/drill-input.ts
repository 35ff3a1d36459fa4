import { objectProblem, unknownFields, type Shape } from './input-shape';
/**
 * The drill workflow's input, checked before any step runs: schedules, the CLI, the Temporal UI's start form and
 * scripts start it, and garbage must fail the run at once naming the field, never wedge its workflow task.
 * Pure: imported by the workflow.
 */
export interface DrillRestoreInput {
  cluster: string;
  /** "latest" (default: the newest backup a recovery could use now) or a backup key from `lifeboat backup list`. */
  snapshot?: string;
  /** Why this drill runs (schedule, operator); kept in the result. */
  reason?: string;
}

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;
const SHAPE: Shape = { at: 'input', fields: ['cluster', 'snapshot', 'reason'], example: '{"cluster": "prod"}', maxChars: 16_384 };

export function drillInputProblems(input: DrillRestoreInput): string[] {
  const bad = objectProblem(input, SHAPE);
  if (bad) return [bad];
  const problems: string[] = [];
  if (typeof input.cluster !== 'string' || !NAME.test(input.cluster))
    problems.push('cluster: expected a cluster name from the config (lowercase letters, digits, "-", at most 63)');
  if (input.snapshot !== undefined) {
    if (typeof input.snapshot !== 'string' || input.snapshot.length > 1024)
      problems.push('snapshot: expected "latest" or a backup key of at most 1024 characters');
    else if (input.snapshot !== 'latest' && (!KEY.test(input.snapshot) || input.snapshot.split('/').some((s) => s === '..' || s === '.')))
      problems.push(
        'snapshot: expected "latest" or a backup key from `lifeboat backup list` (letters, digits, ".", "_", "-", "/"; no ".." segments)',
      );
  }
  if (input.reason !== undefined && (typeof input.reason !== 'string' || input.reason.length > 500))
    problems.push('reason: expected text of at most 500 characters');
  problems.push(...unknownFields(input, SHAPE));
  return problems;
}
