import { parse } from 'yaml';

/** The parts of a kubeconfig the engine uses: the API server URL and client-certificate credentials (kubeadm's). */
export interface KubeCredentials {
  server: string;
  caPem: Buffer;
  certPem?: Buffer;
  keyPem?: Buffer;
  token?: string;
  /** The name the server's certificate is checked against when it differs from the URL's host (a drill's loopback apiserver). */
  serverName?: string;
}

interface RawKubeconfig {
  'current-context'?: string;
  contexts?: { name: string; context: { cluster: string; user: string } }[];
  clusters?: { name: string; cluster: { server: string; 'certificate-authority-data'?: string } }[];
  users?: { name: string; user: { 'client-certificate-data'?: string; 'client-key-data'?: string; token?: string } }[];
}

const b64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64') : undefined);

/**
 * A kubeconfig's YAML. Its parse error keeps only the first line (what and where): the parser quotes the lines around
 * the fault, and in a kubeconfig those can be its client key, which must never reach an error, a log or history.
 */
export function parseKubeconfigYaml<T>(text: string): T {
  try {
    return parse(text) as T;
  } catch (err) {
    // eslint-disable-next-line preserve-caught-error -- the cause quotes the kubeconfig's lines, which can be its key
    throw new Error((err as Error).message.split('\n')[0]);
  }
}

/** Parses a kubeconfig with embedded data (as kubeadm writes admin.conf); `server` overrides the URL in it. */
export function credentialsFromKubeconfig(text: string, server?: string): KubeCredentials {
  const kc = parseKubeconfigYaml<RawKubeconfig>(text);
  const ctxName = kc['current-context'] ?? kc.contexts?.[0]?.name;
  const ctx = kc.contexts?.find((c) => c.name === ctxName)?.context;
  const cluster = kc.clusters?.find((c) => c.name === ctx?.cluster)?.cluster ?? kc.clusters?.[0]?.cluster;
  const user = kc.users?.find((u) => u.name === ctx?.user)?.user ?? kc.users?.[0]?.user;
  if (!cluster?.server) throw new Error('kubeconfig: no cluster server URL');
  const caPem = b64(cluster['certificate-authority-data']);
  if (!caPem) throw new Error('kubeconfig: no embedded certificate-authority-data (kubeadm kubeconfigs embed it)');
  return {
    server: server ?? cluster.server,
    caPem,
    certPem: b64(user?.['client-certificate-data']),
    keyPem: b64(user?.['client-key-data']),
    token: user?.token,
  };
}
