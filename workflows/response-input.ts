import { objectProblem, pathOf, textProblem, unknownFields, type Shape } from './input-shape';

/**
 * What the alert receiver hands the response workflow: one alert as Alertmanager described it. The same workflow can
 * be started from the Temporal UI or a script, so every field is checked here, with limits, before anything runs.
 * Pure: imported by the workflow (deterministic) and by the receiver.
 */
export interface AlertNotice {
  /** The alert's name (its `alertname` label). */
  name: string;
  status: 'firing' | 'resolved';
  /** Alertmanager's hash of the label set: the same alert firing again has the same fingerprint. */
  fingerprint: string;
  startsAt?: string;
  labels?: Record<string, string>;
  summary?: string;
}

export interface RespondToAlertInput {
  cluster: string;
  alert: AlertNotice;
}

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const ALERT_NAME = /^[A-Za-z_:][A-Za-z0-9_:]{0,199}$/;
const LABEL = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;
const FINGERPRINT = /^[A-Za-z0-9]{1,64}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})$/;
const MAX_LABELS = 40;
const MAX_LABEL_VALUE = 500;
const MAX_SUMMARY = 1000;
/** Above what the field limits allow even with every character escaped: the cap refuses only what they cannot. */
const ALERT_MAX_CHARS = 131_072;
const ALERT_FIELDS = ['name', 'status', 'fingerprint', 'startsAt', 'labels', 'summary'];
const INPUT: Shape = {
  at: 'input',
  fields: ['cluster', 'alert'],
  example: '{"cluster": "prod", "alert": {...}}',
  maxChars: ALERT_MAX_CHARS + 1024,
};

/**
 * Problems of one alert, each naming its field; `at` prefixes the path ("alert", "signal"). `strict` false: its
 * unknown fields and size let through, as before strict schemas (runs recorded before them replay as they ran).
 */
export function alertNoticeProblems(alert: AlertNotice, at = 'alert', strict = true): string[] {
  const shape: Shape = {
    at,
    fields: ALERT_FIELDS,
    example: '{"name": "KubeAPIDown", "status": "firing", "fingerprint": "..."}',
    maxChars: strict ? ALERT_MAX_CHARS : Infinity,
  };
  const bad = objectProblem(alert, shape);
  if (bad) return [bad];
  const problems: string[] = [];
  if (typeof alert.name !== 'string' || !ALERT_NAME.test(alert.name))
    problems.push(`${at}.name: expected an alert name (letters, digits, "_" and ":", at most 200)`);
  if (alert.status !== 'firing' && alert.status !== 'resolved') problems.push(`${at}.status: expected "firing" or "resolved"`);
  if (typeof alert.fingerprint !== 'string' || !FINGERPRINT.test(alert.fingerprint))
    problems.push(`${at}.fingerprint: expected Alertmanager's fingerprint (letters and digits, at most 64)`);
  if (alert.startsAt !== undefined && (typeof alert.startsAt !== 'string' || !TIME.test(alert.startsAt) || alert.startsAt.length > 40))
    problems.push(`${at}.startsAt: expected an RFC 3339 time`);
  const summary = alert.summary === undefined ? undefined : textProblem(alert.summary, pathOf(at, 'summary'), MAX_SUMMARY);
  if (summary) problems.push(summary);
  if (alert.labels !== undefined) {
    if (!alert.labels || typeof alert.labels !== 'object' || Array.isArray(alert.labels))
      problems.push(`${at}.labels: expected an object of label names to strings`);
    else {
      const entries = Object.entries(alert.labels);
      if (entries.length > MAX_LABELS) problems.push(`${at}.labels: at most ${MAX_LABELS} labels`);
      for (const [k, v] of entries.slice(0, MAX_LABELS + 1)) {
        if (!LABEL.test(k)) problems.push(`${at}.labels: "${k.slice(0, 40)}" is not a label name`);
        else if (typeof v !== 'string' || v.length > MAX_LABEL_VALUE)
          problems.push(`${at}.labels.${k}: expected text of at most ${MAX_LABEL_VALUE} characters`);
      }
    }
  }
  if (strict) problems.push(...unknownFields(alert, shape));
  return problems;
}

export function responseInputProblems(input: RespondToAlertInput, strict = true): string[] {
  const bad = objectProblem(input, strict ? INPUT : { ...INPUT, maxChars: Infinity });
  if (bad) return [bad];
  const problems: string[] = [];
  if (typeof input.cluster !== 'string' || !NAME.test(input.cluster))
    problems.push('cluster: expected a cluster name from the config (lowercase letters, digits, "-")');
  problems.push(...alertNoticeProblems(input.alert, 'alert', strict));
  problems.push(...unknownFields(input, INPUT));
  return problems;
}
