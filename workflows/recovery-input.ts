import { objectProblem, unknownFields, type Shape } from './input-shape';
import { parsePoint } from '../src/continuous/point-spec';
/**
 * The recovery workflow's input, typed and checked before any step runs. It is what an operator types into the
 * Temporal UI's start form, what the CLI sends and what an alert webhook sends, so every field is checked here with
 * the field named in the error. Pure: imported by the workflow (deterministic) and by the CLI.
 */
export interface RecoverClusterInput {
  cluster: string;
  /** "latest" (newest backup whose manifest and checksum verify) or a backup key from `lifeboat backup list`. */
  snapshot?: string;
  /**
   * Continuous backups: restore to a point instead of a snapshot: "newest" (the newest durable point), an etcd
   * revision (digits) or an RFC 3339 time. Not with `snapshot`.
   */
  at?: string;
  /** With at "newest": a broken chain restores the newest point it still proves instead of being refused. */
  stopAtBreak?: boolean;
  /** A node name from the config, or a host (then targetHostKey is required). Default: the cluster's first node. */
  target?: string;
  targetHostKey?: string;
  mode?: 'in-place' | 'new-node';
  approval?: 'required' | 'auto';
  dryRun?: boolean;
  reason?: string;
  /** On failure after the control plane was stopped, keep the restored state instead of rolling back. */
  keepRestoredOnFailure?: boolean;
  /** A person's go-ahead for a restore within recovery.cooldown of a successful one (alerts never set it). */
  overrideCooldown?: boolean;
  /** A person's go-ahead for a backup whose manifest is not signed (written before manifests were signed; alerts never set it). */
  acceptUnsignedManifest?: boolean;
  /** Test and drill knobs: how long to wait for approval and for the control plane. */
  approvalTimeoutSeconds?: number;
  controlPlaneTimeoutSeconds?: number;
}

export type NormalizedRecoveryInput = Required<
  Pick<RecoverClusterInput, 'cluster' | 'snapshot' | 'mode' | 'approval' | 'dryRun' | 'keepRestoredOnFailure'>
> &
  Pick<
    RecoverClusterInput,
    | 'target'
    | 'at'
    | 'stopAtBreak'
    | 'targetHostKey'
    | 'reason'
    | 'overrideCooldown'
    | 'acceptUnsignedManifest'
    | 'approvalTimeoutSeconds'
    | 'controlPlaneTimeoutSeconds'
  >;

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const HOST = /^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$/;
const KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;
const LIMITS: [string, number][] = [
  ['cluster', 63],
  ['snapshot', 1024],
  ['at', 64],
  ['target', 253],
  ['targetHostKey', 2048],
  ['reason', 500],
];
const FIELDS = [
  'cluster',
  'snapshot',
  'at',
  'stopAtBreak',
  'target',
  'targetHostKey',
  'mode',
  'approval',
  'dryRun',
  'reason',
  'keepRestoredOnFailure',
  'overrideCooldown',
  'acceptUnsignedManifest',
  'approvalTimeoutSeconds',
  'controlPlaneTimeoutSeconds',
];
const SHAPE: Shape = { at: 'input', fields: FIELDS, example: '{"cluster": "prod"}', maxChars: 16_384 };
const HOST_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+$|^SHA256:[A-Za-z0-9+/]{43}=?$/;

/** Returns the problems, one per field ("snapshot: ..."); empty when the input is usable. */
export function recoveryInputProblems(input: RecoverClusterInput): string[] {
  const problems: string[] = [];
  const bad = objectProblem(input, SHAPE);
  if (bad) return [bad];
  // Lengths first: a 200 KB value is refused before any pattern looks at it, and is never echoed back.
  for (const [field, max] of LIMITS) {
    const v = (input as unknown as Record<string, unknown>)[field];
    if (typeof v === 'string' && v.length > max) problems.push(`${field}: at most ${max} characters (got ${v.length})`);
  }
  if (problems.length) return problems;
  if (typeof input.cluster !== 'string' || !NAME.test(input.cluster))
    problems.push('cluster: expected a cluster name from the config (lowercase letters, digits, "-")');
  if (
    input.snapshot !== undefined &&
    input.snapshot !== 'latest' &&
    (typeof input.snapshot !== 'string' || !KEY.test(input.snapshot) || input.snapshot.split('/').includes('..'))
  ) {
    problems.push(
      'snapshot: expected "latest" or a backup key as `lifeboat backup list` prints it (letters, digits, . _ - and /; no spaces or shell characters)',
    );
  }
  if (input.at !== undefined) {
    const point = parsePoint(input.at);
    if (typeof point === 'string') problems.push(`at: ${point}`);
    if (input.snapshot !== undefined) problems.push('at: restore either a snapshot or to a point (at), not both: remove one of them');
  }
  if (input.stopAtBreak !== undefined && input.at !== 'newest') problems.push('stopAtBreak: only with at: "newest"');
  if (input.target !== undefined && (typeof input.target !== 'string' || !HOST.test(input.target)))
    problems.push('target: expected a node name from the config or a host name/IP');
  if (input.targetHostKey !== undefined && (typeof input.targetHostKey !== 'string' || !HOST_KEY.test(input.targetHostKey))) {
    problems.push('targetHostKey: expected "ssh-ed25519 AAAA..." (from ssh-keyscan) or "SHA256:..."');
  }
  if (input.mode !== undefined && input.mode !== 'in-place' && input.mode !== 'new-node')
    problems.push('mode: expected "in-place" or "new-node"');
  if (input.approval !== undefined && input.approval !== 'required' && input.approval !== 'auto')
    problems.push('approval: expected "required" or "auto"');
  if (input.dryRun !== undefined && typeof input.dryRun !== 'boolean') problems.push('dryRun: expected true or false');
  if (input.reason !== undefined && (typeof input.reason !== 'string' || input.reason.length > 500))
    problems.push('reason: expected text of at most 500 characters');
  for (const [f, max] of [
    ['approvalTimeoutSeconds', 7 * 86400],
    ['controlPlaneTimeoutSeconds', 3600],
  ] as const) {
    const v = input[f];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max))
      problems.push(`${f}: expected a whole number of seconds from 1 to ${max}`);
  }
  for (const f of ['keepRestoredOnFailure', 'overrideCooldown', 'acceptUnsignedManifest', 'stopAtBreak'] as const)
    if (input[f] !== undefined && typeof input[f] !== 'boolean') problems.push(`${f}: expected true or false`);
  problems.push(...unknownFields(input, SHAPE));
  return problems;
}

export function normalizeRecoveryInput(input: RecoverClusterInput): NormalizedRecoveryInput {
  return {
    ...input,
    snapshot: input.snapshot ?? 'latest',
    mode: input.mode ?? 'in-place',
    approval: input.approval ?? 'required',
    dryRun: input.dryRun ?? false,
    keepRestoredOnFailure: input.keepRestoredOnFailure ?? false,
  };
}
