import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isMap, isSeq, parseDocument, stringify } from 'yaml';
import { keepDirs, ownDir, run, untilReady } from './alertmanager';
import { freePort, startProcess, type ManagedProcess } from '../src/devserver/processes';

/**
 * A real Prometheus (Debian's `prometheus`) on loopback that scrapes the given targets, evaluates the given rule files
 * (lifeboat's shipped rules, usually with their `for:` shortened) and sends its alerts to an Alertmanager.
 */
export interface PrometheusOptions {
  /** A directory of its own (created if missing, must be empty): config, rule copies, TSDB, log. stop() removes it. */
  dir: string;
  /** `host:port` (scraped at /metrics over HTTP) or a full URL such as http://127.0.0.1:9464/metrics. */
  scrapeTargets: string[];
  /** Scrape and rule evaluation interval. */
  scrapeInterval?: string;
  rulesFiles: string[];
  /** Replaces the `for:` of every alerting rule that has one, in copies of the rule files (e.g. '2s'). */
  forOverride?: string;
  /** The Alertmanager's base URL, e.g. http://127.0.0.1:9093. */
  alertmanagerUrl: string;
  binary?: string;
  promtool?: string;
}

/** One entry of /api/v1/alerts. */
export interface PrometheusAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing' | 'inactive';
  activeAt?: string;
  value: string;
}

/** One sample of an instant query's vector result. */
export interface PrometheusSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusServer {
  /** http://127.0.0.1:<port> */
  url: string;
  dir: string;
  configFile: string;
  /** The rule files it loaded (the copies, with `for:` overridden). */
  rulesFiles: string[];
  logFile: string;
  process: ManagedProcess;
  /** Pending and firing alerts, as Prometheus sees them now. */
  alerts(): Promise<PrometheusAlert[]>;
  /** An instant query; the result must be a vector. */
  query(expr: string): Promise<PrometheusSample[]>;
  /** Kills it and removes its directory (kept with LIFEBOAT_KEEP_TMP or LIFEBOAT_KEEP_SANDBOX). */
  stop(): Promise<void>;
}

/**
 * A rule file's text with the `for:` of every alerting rule that has one set to `duration` (parsed with the yaml
 * package, comments kept). Rules without `for:` fire on their first true evaluation and are left alone.
 * Returns the text and the number of rules in the file.
 */
export function overrideFor(rulesText: string, duration: string | undefined, file = 'rules'): { text: string; rules: number } {
  const doc = parseDocument(rulesText);
  if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
  const groups = doc.get('groups', true);
  if (!isSeq(groups)) throw new Error(`${file}: no groups`);
  let rules = 0;
  for (const group of groups.items) {
    const list = isMap(group) ? group.get('rules', true) : undefined;
    if (!isSeq(list)) continue;
    for (const rule of list.items) {
      if (!isMap(rule)) continue;
      rules += 1;
      if (duration !== undefined && rule.has('alert') && rule.has('for')) rule.set('for', duration);
    }
  }
  return { text: doc.toString(), rules };
}

/** The scrape configs for the targets: one job per scheme and path, the first named `lifeboat`. */
function scrapeConfigs(targets: string[]): Record<string, unknown>[] {
  const jobs = new Map<string, { scheme: string; path: string; hosts: string[] }>();
  for (const target of targets) {
    const url = new URL(target.includes('://') ? target : `http://${target}/metrics`);
    const key = `${url.protocol}//${url.pathname}${url.search}`;
    if (!jobs.has(key)) jobs.set(key, { scheme: url.protocol.replace(':', ''), path: url.pathname + url.search, hosts: [] });
    jobs.get(key)!.hosts.push(url.host);
  }
  return [...jobs.values()].map((job, i) => ({
    job_name: i === 0 ? 'lifeboat' : `lifeboat-${i + 1}`,
    scheme: job.scheme,
    metrics_path: job.path,
    static_configs: [{ targets: job.hosts }],
  }));
}

export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  const binary = options.binary ?? 'prometheus';
  const promtool = options.promtool ?? 'promtool';
  const interval = options.scrapeInterval ?? '1s';
  const dir = await ownDir(options.dir);
  const configFile = join(dir, 'prometheus.yml');
  const tsdbDir = join(dir, 'data');
  const logFile = join(dir, 'prometheus.log');
  const removeDir = () => (keepDirs() ? Promise.resolve() : rm(dir, { recursive: true, force: true }));
  const rulesFiles: string[] = [];
  let expectedRules = 0;
  try {
    await run(binary, ['--version'], 'Prometheus (Debian package prometheus)');
    await mkdir(join(dir, 'rules'));
    await mkdir(tsdbDir);
    for (const [i, file] of options.rulesFiles.entries()) {
      const { text, rules } = overrideFor(await readFile(file, 'utf8'), options.forOverride, file);
      const copy = join(dir, 'rules', `${i}-${basename(file)}`);
      await writeFile(copy, text);
      rulesFiles.push(copy);
      expectedRules += rules;
    }
    const am = new URL(options.alertmanagerUrl);
    const config = {
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      rule_files: rulesFiles,
      alerting: {
        alertmanagers: [
          {
            api_version: 'v2',
            scheme: am.protocol.replace(':', ''),
            ...(am.pathname !== '/' ? { path_prefix: am.pathname } : {}),
            static_configs: [{ targets: [am.host] }],
          },
        ],
      },
      scrape_configs: scrapeConfigs(options.scrapeTargets),
    };
    await writeFile(configFile, stringify(config));
    // Checks the configuration and every rule file it names, with their errors, before anything runs.
    const check = await run(promtool, ['check', 'config', configFile], 'promtool (Debian package prometheus)');
    if (check.code !== 0) throw new Error(`promtool check config ${configFile} failed:\n${check.output}`);
  } catch (err) {
    await removeDir();
    throw err;
  }

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = startProcess(
    'prometheus',
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${tsdbDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // With the default 1m the first alert waits until Prometheus has discovered the Alertmanager: a minute late.
      '--rules.alert.resend-delay=1s',
    ],
    { logFile },
  );
  const stop = async () => {
    await proc.stop();
    await removeDir();
  };
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (!res.ok || body.status !== 'success') throw new Error(`GET ${path}: ${res.status} ${body.error ?? ''}`);
    return body.data;
  };
  try {
    await untilReady(proc, `Prometheus on ${url}`, logFile, async () => (await fetch(`${url}/-/ready`)).ok);
    await untilReady(proc, `Prometheus on ${url} to load ${expectedRules} rules`, logFile, async () => {
      const { groups } = await api<{ groups: { rules: unknown[] }[] }>('/api/v1/rules');
      return groups.reduce((n, g) => n + g.rules.length, 0) === expectedRules;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    dir,
    configFile,
    rulesFiles,
    logFile,
    process: proc,
    alerts: async () => (await api<{ alerts: PrometheusAlert[] }>('/api/v1/alerts')).alerts,
    async query(expr) {
      const data = await api<{ resultType: string; result: PrometheusSample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      if (data.resultType !== 'vector') throw new Error(`query ${expr}: a ${data.resultType}, not a vector`);
      return data.result;
    },
    stop,
  };
}
