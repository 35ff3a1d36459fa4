import { objectProblem, unknownFields, type Shape } from './input-shape';
/**
 * The health check's input (health-<cluster> schedules, the UI, scripts): garbage fails the run at once naming the
 * field instead of wedging its workflow task. Pure: imported by the workflow.
 */
export interface CheckClusterHealthInput {
  cluster: string;
  node?: string;
  timeoutSeconds?: number;
}

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const HEALTH: Shape = { at: 'input', fields: ['cluster', 'node', 'timeoutSeconds'], example: '{"cluster": "prod"}', maxChars: 16_384 };
const CHECK: Shape = { ...HEALTH, fields: ['cluster'] };

export function healthInputProblems(input: CheckClusterHealthInput): string[] {
  const bad = objectProblem(input, HEALTH);
  if (bad) return [bad];
  const problems: string[] = [];
  if (typeof input.cluster !== 'string' || !NAME.test(input.cluster))
    problems.push('cluster: expected a cluster name from the config (lowercase letters, digits, "-", at most 63)');
  if (input.node !== undefined && (typeof input.node !== 'string' || !NAME.test(input.node)))
    problems.push('node: expected a node name from the config');
  if (
    input.timeoutSeconds !== undefined &&
    (typeof input.timeoutSeconds !== 'number' ||
      !Number.isInteger(input.timeoutSeconds) ||
      input.timeoutSeconds < 1 ||
      input.timeoutSeconds > 60)
  )
    problems.push('timeoutSeconds: expected a whole number of seconds from 1 to 60');
  problems.push(...unknownFields(input, HEALTH));
  return problems;
}

/** The reachability check's input ({"cluster": "prod"}), checked the same way. */
export function checkInputProblems(input: { cluster: string }): string[] {
  const bad = objectProblem(input, CHECK);
  if (bad) return [bad];
  const problems: string[] = [];
  if (typeof input.cluster !== 'string' || !NAME.test(input.cluster))
    problems.push('cluster: expected a cluster name from the config (lowercase letters, digits, "-", at most 63)');
  problems.push(...unknownFields(input, CHECK));
  return problems;
}
