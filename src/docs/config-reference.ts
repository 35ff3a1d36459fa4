import { z } from 'zod';
import { absolutePath, configSchema, name } from '../config/schema';
import { code, page, table } from './markdown';

/** A JSON Schema node as zod's toJSONSchema writes it (only what the page reads). */
interface Node {
  type?: string;
  description?: string;
  default?: unknown;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  minItems?: number;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Node[];
  items?: Node;
  properties?: Record<string, Node>;
  required?: string[];
  additionalProperties?: Node | boolean;
  propertyNames?: Node;
}

const patternOf = (s: z.ZodType) => (z.toJSONSchema(s) as Node).pattern;

/** Patterns the config uses again and again, by the name a reader knows them by. */
const NAMED_PATTERNS: Record<string, string> = {
  [patternOf(name) ?? '']: 'name (lowercase letters, digits, "-")',
  [patternOf(absolutePath) ?? '']: 'absolute path',
  '^(\\d+(ms|s|m|h|d))+$': 'duration ("30s", "5m", "1h30m", "7d")',
};

const isSecretRef = (n: Node) =>
  n.anyOf?.length === 2 &&
  n.anyOf.every((v) => v.type === 'object' && Object.keys(v.properties ?? {}).length === 1) &&
  n.anyOf[0].properties?.file !== undefined &&
  n.anyOf[1].properties?.env !== undefined;

function typeOf(n: Node): string {
  if (isSecretRef(n)) return 'secret reference: `{file: /abs/path}` or `{env: VAR_NAME}`';
  // A union's object variants by their fields (`credentials: {profile} or {accessKeyId, secretAccessKey}`).
  if (n.anyOf) return n.anyOf.map((v) => (v.properties ? code(`{${Object.keys(v.properties).join(', ')}}`) : typeOf(v))).join(' or ');
  if (n.const !== undefined) return code(JSON.stringify(n.const));
  if (n.enum) return n.enum.map((v) => code(String(v))).join(' | ');
  switch (n.type) {
    case 'string': {
      if (n.pattern) return NAMED_PATTERNS[n.pattern] ?? `string matching ${code(n.pattern)}`;
      if (n.format === 'uri') return 'URL';
      return n.minLength ? 'non-empty string' : 'string';
    }
    case 'integer':
    case 'number': {
      // zod's int() bounds every integer by MAX_SAFE_INTEGER: no limit a reader needs to know.
      const max = n.maximum === Number.MAX_SAFE_INTEGER ? undefined : n.maximum;
      const range =
        n.minimum !== undefined && max !== undefined ? ` ${n.minimum}–${max}` : n.minimum !== undefined ? ` ≥ ${n.minimum}` : '';
      return `${n.type === 'integer' ? 'integer' : 'number'}${range}`;
    }
    case 'boolean':
      return 'boolean';
    case 'array':
      return `list of ${n.items ? typeOf(n.items) : 'values'}${n.minItems ? ` (at least ${n.minItems})` : ''}`;
    case 'object':
      if (n.properties) return 'object';
      if (typeof n.additionalProperties === 'object')
        return `map: ${n.propertyNames ? typeOf(n.propertyNames) : 'key'} → ${typeOf(n.additionalProperties)}`;
      return 'object';
    default:
      return 'any';
  }
}

function defaultOf(n: Node, required: boolean): string {
  if (n.default === undefined) return required ? 'required' : '';
  if (n.default !== null && typeof n.default === 'object' && !Array.isArray(n.default) && n.properties) return "its fields' defaults";
  return code(JSON.stringify(n.default));
}

/** The object variants of a field (an object, or a union with objects in it, such as `tls: true | {...}`). */
const objectsIn = (n: Node): Node[] => (n.properties ? [n] : (n.anyOf ?? []).flatMap(objectsIn));

function rows(n: Node, path: string, out: string[][], missing: string[]): void {
  const variants = isSecretRef(n) ? [] : objectsIn(n);
  for (const v of variants)
    for (const [key, child] of Object.entries(v.properties ?? {})) {
      const at = path ? `${path}.${key}` : key;
      if (!child.description) missing.push(at);
      out.push([code(at), typeOf(child), defaultOf(child, v.required?.includes(key) ?? false), child.description ?? '']);
      if (child.type === 'array' && child.items) rows(child.items, `${at}[]`, out, missing);
      else if (child.type === 'object' && typeof child.additionalProperties === 'object' && !child.properties)
        rows(
          child.additionalProperties,
          `${at}.<${child.propertyNames && typeOf(child.propertyNames).startsWith('name') ? 'name' : 'key'}>`,
          out,
          missing,
        );
      else rows(child, at, out, missing);
    }
}

/** docs/reference/configuration.md: every field of the config schema, with its type, default and description. */
export function configurationReference(): string {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Node;
  const out: string[][] = [];
  const missing: string[] = [];
  rows(schema, '', out, missing);
  // A field without words is a field nobody can look up: name it, so the fix is a .describe() in src/config/schema.ts.
  if (missing.length) throw new Error(`config fields without a .describe() in src/config/schema.ts: ${missing.join(', ')}`);
  return page(
    'Configuration reference',
    'Every field of the config file (YAML), with its type, its default and what it is for. The file in one example, and how an invalid one is reported: [Configuration](../configuration.md). Secrets are never written into the file: they are secret references, read by the worker only when needed.',
    'the zod schema in src/config/schema.ts',
    table(['field', 'type', 'default', 'description'], out),
  );
}
