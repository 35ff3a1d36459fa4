import { objectProblem, unknownFields, type Shape } from './input-shape';
/**
 * The import workflow's input, checked before any step runs: the CLI, the Temporal UI's start form and scripts start
 * it, and garbage must fail the run at once naming the field, never wedge its workflow task. Pure: imported by the
 * workflow.
 */
export interface ImportBackupInput {
  cluster: string;
  /** The snapshot's key in the cluster's bucket (as `etcdctl snapshot save` + `aws s3 cp` left it). */
  key: string;
  /** What to record as its origin when not the key (the local file name `backup import` staged). */
  from?: string;
  /** The key is a staged copy of a local file (under <prefix>/<cluster>/import-staging/): removed when the import ends. */
  staged?: boolean;
  /** Why (operator, migration); kept in the result. */
  reason?: string;
}

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** S3 keys as people and scripts name snapshots: no control characters, quotes, shell metacharacters or `..` segments. */
const KEY = /^[A-Za-z0-9._+=@,:-]+(\/[A-Za-z0-9._+=@,:-]+)*$/;
const SHAPE: Shape = {
  at: 'input',
  fields: ['cluster', 'key', 'from', 'staged', 'reason'],
  example: '{"cluster": "prod", "key": "etcd-backups/2026-11-25-09-45"}',
  maxChars: 16_384,
};

const keyProblem = (field: string, value: unknown): string | undefined => {
  if (typeof value !== 'string' || value.length === 0 || value.length > 1024) return `${field}: expected an S3 key of 1 to 1024 characters`;
  if (!KEY.test(value) || value.split('/').some((seg) => seg === '..' || seg === '.'))
    return `${field}: expected an S3 key of letters, digits and . _ - + = @ , : separated by "/" (no "..", spaces, quotes or control characters)`;
  return undefined;
};

export function importInputProblems(input: ImportBackupInput): string[] {
  const bad = objectProblem(input, SHAPE);
  if (bad) return [bad];
  const problems: string[] = [];
  if (typeof input.cluster !== 'string' || !NAME.test(input.cluster))
    problems.push('cluster: expected a cluster name from the config (lowercase letters, digits, "-", at most 63)');
  const key = keyProblem('key', input.key);
  if (key) problems.push(key);
  if (input.from !== undefined) {
    const from = keyProblem('from', input.from);
    if (from) problems.push(from.replace('an S3 key', 'a key or file name'));
  }
  if (input.staged !== undefined && typeof input.staged !== 'boolean') problems.push('staged: expected true or false');
  if (input.reason !== undefined && (typeof input.reason !== 'string' || input.reason.length > 500))
    problems.push('reason: expected text of at most 500 characters');
  problems.push(...unknownFields(input, SHAPE));
  return problems;
}
