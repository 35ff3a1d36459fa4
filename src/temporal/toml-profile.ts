import { loadClientConfigProfile, type ClientConfigProfile, type ConfigDataSource } from '@temporalio/envconfig';

type Env = Record<string, string | undefined>;

/**
 * Temporal's own client profile (the TOML file `temporal config` writes), as the variables it stands for, so that it
 * slots into the same resolution as the environment. Read only when the environment names it (TEMPORAL_CONFIG_FILE or
 * TEMPORAL_PROFILE): a personal default profile in ~/.config/temporalio must never silently move a worker to
 * another server. `labels` maps each variable it set to where it came from, for errors and `temporal check`.
 */
export interface ProfileVariables {
  vars: Env;
  metadata: Record<string, string>;
  labels: Record<string, string>;
}

export function profileVariables(env: Env): ProfileVariables | undefined {
  const file = env.TEMPORAL_CONFIG_FILE || undefined;
  const name = env.TEMPORAL_PROFILE || undefined;
  if (!file && !name) return undefined;
  let profile: ClientConfigProfile;
  try {
    profile = loadClientConfigProfile({
      profile: name,
      disableEnv: true,
      configFileStrict: true,
      overrideEnvVars: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
    });
  } catch (err) {
    const where = file ?? '~/.config/temporalio/temporal.toml';
    throw new Error(`${where}${name ? ` (profile ${name})` : ''}: ${(err as Error).message}`, { cause: err });
  }
  const at = `${file ?? 'temporal.toml'} profile ${name ?? 'default'}`;
  const vars: Env = {};
  const labels: Record<string, string> = {};
  const put = (variable: string, value: string | undefined, key: string) => {
    if (value === undefined || value === '') return;
    vars[variable] = value;
    labels[variable] = `${at}: ${key}`;
  };
  const source = (s: ConfigDataSource | undefined, variable: string, key: string) => {
    if (!s) return;
    if ('path' in s) put(`${variable}_PATH`, s.path, `tls.${key}_path`);
    else put(`${variable}_DATA`, typeof s.data === 'string' ? s.data : Buffer.from(s.data).toString('utf8'), `tls.${key}_data`);
  };
  put('TEMPORAL_ADDRESS', profile.address, 'address');
  put('TEMPORAL_NAMESPACE', profile.namespace, 'namespace');
  put('TEMPORAL_API_KEY', profile.apiKey, 'api_key');
  if (profile.tls) {
    // A [tls] table turns TLS on unless it says disabled, as Temporal's SDKs read it.
    put('TEMPORAL_TLS', profile.tls.disabled ? 'false' : 'true', profile.tls.disabled ? 'tls.disabled' : 'tls');
    put('TEMPORAL_TLS_SERVER_NAME', profile.tls.serverName, 'tls.server_name');
    source(profile.tls.serverCACert, 'TEMPORAL_TLS_SERVER_CA_CERT', 'server_ca_cert');
    source(profile.tls.clientCert, 'TEMPORAL_TLS_CLIENT_CERT', 'client_cert');
    source(profile.tls.clientKey, 'TEMPORAL_TLS_CLIENT_KEY', 'client_key');
  }
  return { vars, metadata: { ...profile.grpcMeta }, labels };
}

/**
 * gRPC metadata from TEMPORAL_GRPC_META_<NAME> (an empty value removes a header a profile set): the header is the name
 * in lower case with every `_` a `-`, as the temporal CLI does (the TS envconfig only replaces the first `_`).
 */
export function metadataFromEnv(env: Env, base: Record<string, string> = {}): Record<string, string> {
  const out = { ...base };
  const PREFIX = 'TEMPORAL_GRPC_META_';
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith(PREFIX) || k.length === PREFIX.length) continue;
    const header = k.slice(PREFIX.length).toLowerCase().replace(/_/g, '-');
    if (v === undefined || v === '') delete out[header];
    else out[header] = v;
  }
  return out;
}
