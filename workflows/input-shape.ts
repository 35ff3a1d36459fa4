/**
 * The one way every workflow input and every signal payload is checked before it is believed: they arrive from places
 * the CLI does not guard (the Temporal UI's start and signal forms, `temporal workflow start/signal`, scripts, raw
 * gRPC), so each object is a plain JSON object of known fields at every depth, of bounded size, and anything else is
 * refused with the path of the field and what to send instead. Hostile keys and values are never echoed whole.
 * Pure: imported by the workflows (deterministic), the CLI and the payload converter.
 */

/**
 * What the worker's payload converter (src/temporal/payload-converter.ts) hands a workflow in place of a payload it
 * cannot decode (data that is not JSON, an encoding it does not know): a value the checks below refuse by name, so the
 * run fails, or the signal is ignored, instead of its workflow task failing and being retried forever.
 */
export const UNDECODABLE = '__lifeboatUndecodablePayload';

export function undecodable(problem: string): { [UNDECODABLE]: string } {
  return { [UNDECODABLE]: problem.slice(0, 200) };
}

export interface Shape {
  /** The object's path in messages: "input" for a workflow's input, "alert", "signal approve", ... */
  at: string;
  /** Its fields: any other is refused. */
  fields: readonly string[];
  /** What a good one looks like, for the message when it is not an object at all. */
  example: string;
  /** The whole object as JSON, in characters: checked first, so a 1 MB value is refused before anything walks it. */
  maxChars: number;
}

/** "input" names its fields bare ("cluster: ..."), as the CLI and the UI's form call them; nested ones by path. */
export function pathOf(at: string, field: string): string {
  return at === 'input' ? field : `${at}.${field}`;
}

const cut = (s: string) => `"${s.length > 40 ? `${s.slice(0, 40)}...` : s}"`;

/**
 * The problem that makes checking the fields pointless, or undefined: a payload that did not decode, anything but a
 * plain object (null, a string, an array, bytes), an object too large. Then the field checks, then unknownFields.
 */
export function objectProblem(value: unknown, shape: Shape): string | undefined {
  const { at } = shape;
  if (isUndecodable(value))
    return `${at}: not valid JSON (${(value as Record<string, string>)[UNDECODABLE]}); send a JSON object like ${shape.example}`;
  if (!value || typeof value !== 'object' || Array.isArray(value) || !isPlain(value))
    return `${at}: expected an object like ${shape.example}`;
  const size = JSON.stringify(value).length;
  if (size <= shape.maxChars) return undefined;
  // Name the field that made it too large: that is the one to shorten (or remove, when it is unknown).
  const [field, fieldSize] = Object.entries(value)
    .map(([k, v]) => [k, JSON.stringify(v ?? null).length] as const)
    .reduce((a, b) => (b[1] > a[1] ? b : a));
  return `${pathOf(at, cut(field).slice(1, -1))}: too large (${fieldSize} characters of JSON; the whole ${at} must be at most ${shape.maxChars})`;
}

/** Fields the shape does not define (a typo in the UI's form, a script's stale field): at most five named, each cut. */
export function unknownFields(value: object, shape: Shape): string[] {
  const extra = Object.keys(value).filter((k) => !shape.fields.includes(k));
  if (!extra.length) return [];
  return [`${shape.at}: unknown field ${extra.slice(0, 5).map(cut).join(', ')} (remove it; expected ${shape.fields.join(', ')})`];
}

/** Free text of at most `max` characters (a reason, a summary); `required`: also not blank. */
export function textProblem(value: unknown, path: string, max: number, required = false): string | undefined {
  if (typeof value !== 'string' || value.length > max || (required && !value.trim()))
    return `${path}: expected ${required ? 'non-empty ' : ''}text of at most ${max} characters${typeof value === 'string' && value.length > max ? ` (got ${value.length})` : ''}`;
  return undefined;
}

function isUndecodable(value: unknown): boolean {
  return !!value && typeof value === 'object' && Object.prototype.hasOwnProperty.call(value, UNDECODABLE);
}

/** JSON objects only: not bytes (a binary/plain payload decodes to a Uint8Array), not a Date or a Map. */
function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as object | null;
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
}

/**
 * What a run keeps of the malformed signals it ignored (the server cannot refuse a signal): how many, and the first
 * one's first problem, cut, so that a flood of them cannot grow the run's state or result.
 */
export interface IgnoredSignals {
  count: number;
  first: string;
}

export function ignoredSignal(seen: IgnoredSignals | undefined, problems: string[]): IgnoredSignals {
  return { count: (seen?.count ?? 0) + 1, first: seen?.first ?? problems[0].slice(0, 300) };
}
