import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import type { Config, SecretRef } from '../config/schema';
import { metadataFromEnv, profileVariables, type ProfileVariables } from './toml-profile';

/**
 * Where the engine's Temporal is and how to prove who is talking: one resolution for the worker, the CLI, schedules,
 * the alert receiver and `lifeboat temporal check`, so they can never disagree.
 *
 * Precedence, per setting (as Temporal's own CLI and SDKs do, so one image and one set of variables serve every
 * environment): the environment variables Temporal's envconfig defines, then the legacy TEMPORAL_TLS_CERT/KEY/CA the
 * `temporal` CLI still honours over them, then Temporal's TOML client profile when TEMPORAL_CONFIG_FILE or
 * TEMPORAL_PROFILE names one (as Temporal's SDKs, variables beat the profile), then the config file's `temporal`
 * section, then the defaults.
 */
export interface TemporalTarget {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Undefined: plain text. */
  tls?: TLSConfig;
  apiKey?: string;
  /** gRPC headers sent with every call (TEMPORAL_GRPC_META_*, a profile's grpc_meta); values may be secrets. */
  metadata?: Record<string, string>;
  /** Where each setting came from (a config path or a variable name), so that errors name what to fix. */
  from: SettingSources;
}

/**
 * The task queue the worker polls and every start (CLI, schedules, alert receiver) targets: LIFEBOAT_TASK_QUEUE, else
 * temporal.taskQueue. The one place it is decided, so a schedule never starts runs on a queue no worker polls.
 */
export function taskQueueOf(config: Config, env: Record<string, string | undefined> = process.env): string {
  return env.LIFEBOAT_TASK_QUEUE ?? config.temporal.taskQueue;
}

/**
 * The task queue of a site's clusters: `<taskQueue>-<site>`, polled only by the workers started for that site
 * (`lifeboat worker --site <site>`); a cluster without a site stays on the task queue itself.
 */
export function siteTaskQueue(taskQueue: string, site: string | undefined): string {
  return site === undefined ? taskQueue : `${taskQueue}-${site}`;
}

/**
 * A Temporal dev server this process started itself (`npm start`, the demo, the benches): plain text at its address,
 * namespace default, whatever TEMPORAL_* or a profile says about a production server the user may also have.
 */
export function localDevServerTarget(address: string, taskQueue: string): TemporalTarget {
  return { address, namespace: 'default', taskQueue, from: {} };
}

export type Setting = 'address' | 'namespace' | 'tls' | 'ca' | 'serverName' | 'clientCert' | 'clientKey' | 'apiKey';
export type SettingSources = Partial<Record<Setting, string>>;

type Env = Record<string, string | undefined>;

export class TemporalConfigError extends Error {
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
    this.name = 'TemporalConfigError';
  }
}

/** The variables read, by setting: a `_DATA` variable holds the PEM itself, a `_PATH` one a file. */
const ENV = {
  address: 'TEMPORAL_ADDRESS',
  namespace: 'TEMPORAL_NAMESPACE',
  apiKey: 'TEMPORAL_API_KEY',
  tls: 'TEMPORAL_TLS',
  serverName: 'TEMPORAL_TLS_SERVER_NAME',
  // Checked first to last: the temporal CLI lets its legacy names override the envconfig ones.
  ca: ['TEMPORAL_TLS_CA', 'TEMPORAL_TLS_CA_DATA', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'TEMPORAL_TLS_SERVER_CA_CERT_DATA'],
  clientCert: ['TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_CERT_DATA', 'TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CLIENT_CERT_DATA'],
  clientKey: ['TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_KEY_DATA', 'TEMPORAL_TLS_CLIENT_KEY_PATH', 'TEMPORAL_TLS_CLIENT_KEY_DATA'],
} as const;

function set(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** A PEM (or key) from a variable: `_DATA`/`_KEY` variables hold it, the others name a file. */
async function fromEnv(env: Env, names: readonly string[]): Promise<{ value: Buffer; from: string } | undefined> {
  for (const name of names) {
    const v = set(env, name);
    if (v === undefined) continue;
    if (name.endsWith('_DATA')) return { value: Buffer.from(v, 'utf8'), from: name };
    return { value: await readPath(v, name), from: name };
  }
  return undefined;
}

async function readPath(path: string, field: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new TemporalConfigError(
      field,
      `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}); check the path and that this user may read it`,
    );
  }
}

async function fromRef(ref: SecretRef, field: string, env: Env): Promise<Buffer> {
  if ('file' in ref) return readPath(ref.file, field);
  const v = set(env, ref.env);
  if (v === undefined) throw new TemporalConfigError(field, `environment variable ${ref.env} is not set; export it before starting`);
  return Buffer.from(v, 'utf8');
}

function requirePem(value: Buffer, field: string, kind: 'CERTIFICATE' | 'PRIVATE KEY'): Buffer {
  const text = value.toString('utf8');
  const ok = kind === 'CERTIFICATE' ? text.includes('-----BEGIN CERTIFICATE-----') : /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text);
  // Never echo the content: it may be a key.
  if (!ok) throw new TemporalConfigError(field, `expected a PEM ${kind.toLowerCase()} ("-----BEGIN ${kind}-----"), got something else`);
  return value;
}

/**
 * What can be known before dialling is said before dialling: a server answers an expired or mismatched client
 * certificate with a bare alert or an HTTP 400 that names nothing.
 */
function checkClientPair(crt: Buffer, crtField: string, key: Buffer, keyField: string, now = new Date()): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(crt);
  } catch {
    throw new TemporalConfigError(crtField, 'not a readable X.509 certificate (PEM)');
  }
  const subject = cert.subject.replace(/\n/g, ', ');
  if (new Date(cert.validTo) < now)
    throw new TemporalConfigError(crtField, `the client certificate (${subject}) expired on ${cert.validTo}: renew it`);
  if (new Date(cert.validFrom) > now)
    throw new TemporalConfigError(crtField, `the client certificate (${subject}) is not valid before ${cert.validFrom}`);
  let matches: boolean;
  try {
    matches = cert.checkPrivateKey(createPrivateKey(key));
  } catch {
    throw new TemporalConfigError(keyField, 'not a readable private key (PEM)');
  }
  if (!matches) throw new TemporalConfigError(keyField, `this key does not belong to the client certificate in ${crtField}`);
}

function parseBool(v: string, field: string): boolean {
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new TemporalConfigError(field, `expected true or false, got "${v.slice(0, 20)}"`);
}

/** Resolves the target from config and environment; reads the certificate and key files; never logs a secret. */
export async function temporalTarget(config: Config, env: Env = process.env): Promise<TemporalTarget> {
  let profile: ProfileVariables | undefined;
  try {
    profile = profileVariables(env);
  } catch (err) {
    throw new TemporalConfigError(set(env, 'TEMPORAL_PROFILE') ? 'TEMPORAL_PROFILE' : 'TEMPORAL_CONFIG_FILE', (err as Error).message);
  }
  const metadata = metadataFromEnv(env, profile?.metadata);
  const withMetadata = (t: TemporalTarget): TemporalTarget => (Object.keys(metadata).length ? { ...t, metadata } : t);
  if (!profile) return withMetadata(await resolve(config, env));
  // The profile stands where its variables would, under any variable that is set.
  const merged: Env = { ...profile.vars, ...Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== '')) };
  const label = (field: string) => (profile.labels[field] !== undefined && set(env, field) === undefined ? profile.labels[field] : field);
  try {
    const target = await resolve(config, merged);
    for (const k of Object.keys(target.from) as Setting[]) target.from[k] = label(target.from[k]!);
    return withMetadata(target);
  } catch (err) {
    if (err instanceof TemporalConfigError && label(err.field) !== err.field) throw new TemporalConfigError(label(err.field), err.detail);
    throw err;
  }
}

async function resolve(config: Config, env: Env): Promise<TemporalTarget> {
  const t = config.temporal;
  const from: SettingSources = {};
  const address = set(env, ENV.address) ?? t.address;
  from.address = set(env, ENV.address) ? ENV.address : 'temporal.address';
  const namespace = set(env, ENV.namespace) ?? t.namespace;
  from.namespace = set(env, ENV.namespace) ? ENV.namespace : 'temporal.namespace';
  if (
    set(env, 'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION') &&
    parseBool(env.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION!, 'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION')
  )
    throw new TemporalConfigError(
      'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION',
      "not supported: the server's name is always checked; set TEMPORAL_TLS_SERVER_NAME (or temporal.tls.serverName) to the name its certificate carries",
    );

  let apiKey: string | undefined;
  if (set(env, ENV.apiKey)) {
    apiKey = env[ENV.apiKey]!.trim();
    from.apiKey = ENV.apiKey;
  } else if (t.apiKey) {
    apiKey = (await fromRef(t.apiKey, 'temporal.apiKey', env)).toString('utf8').trim();
    from.apiKey = 'temporal.apiKey';
  }

  const fileTls = typeof t.tls === 'object' ? t.tls : undefined;
  const ca = await fromEnv(env, ENV.ca);
  const cert = await fromEnv(env, ENV.clientCert);
  const key = await fromEnv(env, ENV.clientKey);
  const tls: TLSConfig = {};
  if (ca) [tls.serverRootCACertificate, from.ca] = [requirePem(ca.value, ca.from, 'CERTIFICATE'), ca.from];
  else if (fileTls?.caFile)
    [tls.serverRootCACertificate, from.ca] = [
      requirePem(await readPath(fileTls.caFile, 'temporal.tls.caFile'), 'temporal.tls.caFile', 'CERTIFICATE'),
      'temporal.tls.caFile',
    ];
  const serverName = set(env, ENV.serverName) ?? fileTls?.serverName;
  if (serverName)
    [tls.serverNameOverride, from.serverName] = [serverName, set(env, ENV.serverName) ? ENV.serverName : 'temporal.tls.serverName'];
  const crt =
    cert ??
    (fileTls?.clientCert
      ? { value: await fromRef(fileTls.clientCert, 'temporal.tls.clientCert', env), from: 'temporal.tls.clientCert' }
      : undefined);
  const pk =
    key ??
    (fileTls?.clientKey
      ? { value: await fromRef(fileTls.clientKey, 'temporal.tls.clientKey', env), from: 'temporal.tls.clientKey' }
      : undefined);
  if (crt && !pk)
    throw new TemporalConfigError(crt.from, `a client certificate without its key: set ${ENV.clientKey[2]} or temporal.tls.clientKey too`);
  if (pk && !crt)
    throw new TemporalConfigError(pk.from, `a client key without its certificate: set ${ENV.clientCert[2]} or temporal.tls.clientCert too`);
  if (crt && pk) {
    tls.clientCertPair = { crt: requirePem(crt.value, crt.from, 'CERTIFICATE'), key: requirePem(pk.value, pk.from, 'PRIVATE KEY') };
    checkClientPair(crt.value, crt.from, pk.value, pk.from);
    [from.clientCert, from.clientKey] = [crt.from, pk.from];
  }

  // On when asked for, when anything TLS is set, or with an API key (as Temporal's SDKs do); an explicit false wins.
  const envTls = set(env, ENV.tls) !== undefined ? parseBool(env[ENV.tls]!, ENV.tls) : undefined;
  const wanted = envTls ?? (typeof t.tls === 'boolean' ? t.tls : undefined);
  from.tls = envTls !== undefined ? ENV.tls : t.tls !== undefined ? 'temporal.tls' : undefined;
  const implied = Object.keys(tls).length > 0 || apiKey !== undefined || fileTls !== undefined;
  const on = wanted ?? implied;
  if (!on) {
    if (from.tls === undefined) delete from.tls;
    if (Object.keys(tls).length > 0 && wanted === false)
      throw new TemporalConfigError(
        from.tls ?? 'temporal.tls',
        `TLS is turned off, yet ${Object.keys(from)
          .filter((k) => ['ca', 'serverName', 'clientCert', 'clientKey'].includes(k))
          .map((k) => from[k as Setting])
          .join(', ')} set TLS options; remove one or the other`,
      );
  } else if (from.tls === undefined) {
    from.tls =
      from.apiKey && Object.keys(tls).length === 0 ? from.apiKey : (from.ca ?? from.clientCert ?? from.serverName ?? 'temporal.tls');
  }
  return {
    address,
    namespace,
    taskQueue: taskQueueOf(config, env),
    ...(on ? { tls } : {}),
    ...(apiKey !== undefined ? { apiKey } : {}),
    from,
  };
}

/** Options for `Connection.connect` and `NativeConnection.connect` alike. */
export function connectionOptions(target: TemporalTarget): {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
  metadata?: Record<string, string>;
} {
  return {
    address: target.address,
    ...(target.tls ? { tls: target.tls } : {}),
    ...(target.apiKey ? { apiKey: target.apiKey } : {}),
    // A copy: the SDK adds its own headers (client-name, client-version) to the object it is given.
    ...(target.metadata ? { metadata: { ...target.metadata } } : {}),
  };
}

/** One line for logs and `temporal check`: where, which namespace, how authenticated; never a secret. */
export function describeTarget(target: TemporalTarget): string {
  const auth = [
    target.tls ? (target.tls.serverRootCACertificate ? `TLS (CA from ${target.from.ca})` : 'TLS (system roots)') : 'plain text',
    target.tls?.serverNameOverride ? `server name ${target.tls.serverNameOverride}` : undefined,
    target.tls?.clientCertPair ? `client certificate from ${target.from.clientCert}` : undefined,
    target.apiKey ? `API key from ${target.from.apiKey}` : undefined,
    // Header names only: their values may be credentials.
    target.metadata ? `gRPC headers ${Object.keys(target.metadata).sort().join(', ')}` : undefined,
  ].filter(Boolean);
  return `${target.address}, namespace ${target.namespace}, ${auth.join(', ')}`;
}
