import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config, type ClusterConfig, type NodeConfig } from './schema';

/** Raised for a config that cannot be used; `problems` holds one line per problem, each naming its path. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(
      problems.length === 1
        ? `${source}: ${problems[0]}`
        : `${source}: invalid config (${problems.length} problems):\n  ${problems.join('\n  ')}`,
    );
    this.name = 'ConfigError';
  }
}

/** `clusters[1].nodes[0].port` from zod's ['clusters', 1, 'nodes', 0, 'port']. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return (
    path.reduce<string>((out, part) => {
      if (typeof part === 'number') return `${out}[${part}]`;
      return out === '' ? String(part) : `${out}.${String(part)}`;
    }, '') || '(root)'
  );
}

export function formatIssues(issues: z.core.$ZodIssue[]): string[] {
  return issues.map((i) => `${formatPath(i.path)}: ${describeIssue(i)}`);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      // zod says "Invalid input: expected number, received string"; keep the useful half, call undefined "missing".
      return issue.message.replace(/^Invalid input: /, '').replace(/, received undefined$/, ' (missing)');
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (secrets are referenced with {file: ...} or {env: ...}, never inlined)`;
    case 'invalid_union':
      return `${issue.message}: ${issue.errors
        .flat()
        .map((e) => `${formatPath(e.path) === '(root)' ? '' : formatPath(e.path) + ' '}${e.message}`)
        .join('; or ')}`;
    default:
      return issue.message;
  }
}

/** Validates an already parsed object (the YAML file's content, or a test's literal). */
export function parseConfig(raw: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) throw new ConfigError(source, formatIssues(result.error.issues));
  return result.data;
}

export async function loadConfigFile(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0)
    throw new ConfigError(
      path,
      doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`),
    );
  return parseConfig(doc.toJS(), path);
}

/** The config file named by --config or LIFEBOAT_CONFIG; without one, the embedded defaults (no clusters). */
export async function loadConfig(path = process.env.LIFEBOAT_CONFIG): Promise<Config> {
  return path ? loadConfigFile(path) : parseConfig({}, 'embedded defaults');
}

export function findCluster(config: Config, name: string): ClusterConfig {
  const cluster = config.clusters.find((c) => c.name === name);
  if (!cluster) {
    const known = config.clusters.map((c) => c.name).join(', ') || 'none configured';
    throw new ConfigError('cluster', [`unknown cluster "${name}": known clusters are ${known}; add it under clusters: in the config file`]);
  }
  return cluster;
}

/** A cluster's node by name, or a ConfigError naming the nodes it has. */
export function findNode(cluster: ClusterConfig, name: string): NodeConfig {
  const node = cluster.nodes.find((n) => n.name === name);
  if (!node) {
    throw new ConfigError('node', [
      `cluster "${cluster.name}" has no node "${name}": known nodes are ${cluster.nodes.map((n) => n.name).join(', ')}`,
    ]);
  }
  return node;
}
