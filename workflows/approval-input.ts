import { objectProblem, pathOf, textProblem, unknownFields, type Shape } from './input-shape';

/**
 * The payload of the approve and reject signals: who decides and why. It is typed into the Temporal UI's signal form,
 * `temporal workflow signal` and scripts as well as sent by `lifeboat recovery approve|reject`, and it becomes the
 * run's audit trail, so it is checked like a workflow input. The server cannot refuse a signal: the workflow ignores
 * a malformed one (it is counted, not recorded as a decision). Pure: imported by the workflow and by the CLI.
 */
export interface ApprovalDecision {
  by: string;
  reason?: string;
}

export const MAX_BY = 100;
export const MAX_DECISION_REASON = 500;
/** Who: a name or an address on one line, no control characters (it is printed into step details and logs). */
const CONTROL = /\p{Cc}/u;

/** Problems of one approve/reject payload, each naming its field ("signal approve.by: ..."). */
export function approvalDecisionProblems(decision: unknown, signal: 'approve' | 'reject'): string[] {
  const shape: Shape = {
    at: `signal ${signal}`,
    fields: ['by', 'reason'],
    example: '{"by": "alice", "reason": "etcd data lost"}',
    maxChars: 4096,
  };
  const bad = objectProblem(decision, shape);
  if (bad) return [bad];
  const d = decision as Record<string, unknown>;
  const problems: string[] = [];
  const by = textProblem(d.by, pathOf(shape.at, 'by'), MAX_BY, true);
  if (by) problems.push(`${by}: who decides, e.g. "alice"`);
  else if (CONTROL.test(d.by as string)) problems.push(`${pathOf(shape.at, 'by')}: expected one line without control characters`);
  const reason = d.reason === undefined ? undefined : textProblem(d.reason, pathOf(shape.at, 'reason'), MAX_DECISION_REASON);
  if (reason) problems.push(reason);
  problems.push(...unknownFields(d, shape));
  return problems;
}
