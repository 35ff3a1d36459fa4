import type { Revision } from '../etcd/revision';
import type { ClusterConfig } from '../config/schema';
import { command } from '../ssh/quote';
import type { NodeSession } from '../ssh/session';
import { certificateExpiry, kubeadmCertificates } from './certificates';
import {
  curlFailure,
  failedChecks,
  parseCertificateBlocks,
  parseDisk,
  parseEtcdEndpointStatus,
  parseEtcdHealth,
  parseHttp,
  parsePrometheusSamples,
  parseSections,
  type Section,
} from './parse-node-output';
import type { CertificateExpiry, ComponentHealth, HealthReport } from './types';

/** kubeadm's loopback endpoints on the control-plane node. */
export const ETCD_METRICS_URL = 'http://127.0.0.1:2381';
export const SCHEDULER_HEALTHZ = 'https://127.0.0.1:10259/healthz';
export const CONTROLLER_MANAGER_HEALTHZ = 'https://127.0.0.1:10257/healthz';

const ETCD_METRICS = [
  'etcd_server_has_leader',
  'etcd_server_quota_backend_bytes',
  'etcd_mvcc_db_total_size_in_bytes',
  'etcd_debugging_mvcc_current_revision',
];

/** etcdctl with the node's client certificates and short timeouts (same flags as activities/etcd-commands.ts). */
function etcdctlStatus(cluster: ClusterConfig, timeoutSeconds: number): string[] {
  const e = cluster.etcd;
  return [
    e.etcdctl,
    `--endpoints=${e.endpoint}`,
    `--cacert=${e.caFile}`,
    `--cert=${e.certFile}`,
    `--key=${e.keyFile}`,
    `--dial-timeout=${timeoutSeconds}s`,
    `--command-timeout=${timeoutSeconds}s`,
    'endpoint',
    'status',
    '-w',
    'json',
  ];
}

/**
 * One shell script that runs every probe of the node side by side (each bounded by the timeout) and prints their
 * outputs as sections `@@lifeboat <name> <exit code>`: etcd's /health and /metrics on its loopback metrics port,
 * `etcdctl endpoint status`, the scheduler's and controller-manager's /healthz (curl -k: loopback, self-signed),
 * free space of the etcd data dir's filesystem, every kubeadm certificate (public certificates only, never a key: the
 * worker reads their expiry; an openssl process per certificate cost the node ~36 ms of CPU each, half a CPU second
 * per check, every minute, on every control-plane node) and the cluster CA. Every value
 * from the config enters the script through `command()` quoting, never pasted raw. Changes nothing on the node
 * (its temp folder is removed on exit).
 */
export function nodeProbeScript(cluster: ClusterConfig, timeoutSeconds: number): string {
  const t = Math.max(1, Math.ceil(timeoutSeconds));
  const q = (...argv: string[]) => command(argv);
  const certs = kubeadmCertificates(cluster)
    .map((c) => `  cert ${q(c.name, c.kind, c.path)}`)
    .join('\n');
  return `T=${t}
D=$(mktemp -d 2>/dev/null) || { D=/tmp/lifeboat-health.$$; mkdir -p "$D"; }
trap 'rm -rf "$D"' EXIT
get() { curl -sS --max-time "$T" -w '\\n@@status %{http_code}\\n' "$@"; }
run() { n="$1"; shift; "$@" >"$D/$n" 2>&1; echo $? >"$D/$n.rc"; }
etcd_health() { get ${q(`${ETCD_METRICS_URL}/health`)}; }
etcd_metrics() { get ${q(`${ETCD_METRICS_URL}/metrics`)} | grep -E ${q(`^(${ETCD_METRICS.join('|')}|@@status) `)}; }
etcd_status() { timeout -k 1 $((T + 1)) ${q(...etcdctlStatus(cluster, t))}; }
scheduler() { get -k ${q(SCHEDULER_HEALTHZ)}; }
controller_manager() { get -k ${q(CONTROLLER_MANAGER_HEALTHZ)}; }
listening() { ss -Htln 2>/dev/null | awk '{print $4}'; }
disk() {
  p=${q(cluster.paths.etcdDataDir)}
  while [ ! -e "$p" ]; do p=$(dirname -- "$p"); done
  echo "$p"; df -B1 --output=avail,size -- "$p" | tail -n 1
}
cert() {
  echo "@@cert $1 $3"
  if [ ! -e "$3" ]; then echo missing; return 0; fi
  if [ "$2" = kubeconfig ]; then
    data=$(sed -n 's/^[[:space:]]*client-certificate-data:[[:space:]]*//p' "$3" | head -n 1)
    if [ -n "$data" ]; then echo "$data"; return 0; fi
    f=$(sed -n 's/^[[:space:]]*client-certificate:[[:space:]]*//p' "$3" | head -n 1)
    cat -- "$f" 2>&1
  else
    cat -- "$3" 2>&1
  fi
}
certs() {
${certs}
}
ca() { cat ${q(`${cluster.paths.pkiDir}/ca.crt`)}; }
for job in etcd_health etcd_metrics etcd_status scheduler controller_manager listening disk certs ca; do run "$job" "$job" & done
wait
for job in etcd_health etcd_metrics etcd_status scheduler controller_manager listening disk certs ca; do
  echo "@@lifeboat $job $(cat "$D/$job.rc" 2>/dev/null)"; cat "$D/$job" 2>/dev/null; echo
done
`;
}

/** What the node side of a health check found. */
export interface NodeProbeResult {
  etcd: ComponentHealth;
  scheduler: ComponentHealth;
  controllerManager: ComponentHealth;
  etcdStats?: HealthReport['etcd'];
  disk?: HealthReport['disk'];
  certificates: CertificateExpiry[];
  /** The cluster CA (PEM) as the node holds it, to verify the API server's TLS; never reported. */
  caPem?: string;
  problems: string[];
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

function healthzComponent(
  component: 'kube-scheduler' | 'kube-controller-manager',
  section: Section | undefined,
  url: string,
  port: number,
  listening: string,
  timeoutSeconds: number,
): ComponentHealth {
  const r = parseHttp(section);
  if (r.rc === 0 && r.status === 200 && r.body === 'ok') return { component, up: true, detail: `${url}: ok` };
  if (r.rc === 127) {
    // No curl on the node: the port is all that can be seen.
    const open = listening.split('\n').some((l) => l.trim().endsWith(`:${port}`));
    return {
      component,
      up: open,
      detail: open ? `listening on ${port} (curl is not installed on the node: /healthz not checked)` : `nothing listens on ${port}`,
    };
  }
  if (r.rc === 0 && r.status)
    return { component, up: false, detail: `${url}: HTTP ${r.status}${r.body ? `: ${failedChecks(r.body)}` : ''}` };
  return { component, up: false, detail: curlFailure(r, url, timeoutSeconds) };
}

/** Turns the probe script's output into component states and facts. */
export function interpretNodeProbe(stdout: string, timeoutSeconds: number): NodeProbeResult {
  const s = parseSections(stdout);
  const problems: string[] = [];
  const t = Math.max(1, Math.ceil(timeoutSeconds));

  // etcd: /health on the metrics port when it answers; etcdctl endpoint status otherwise (and for leader and size).
  const health = parseHttp(s.get('etcd_health'));
  const parsedHealth = health.status === 200 || health.status === 503 ? parseEtcdHealth(health.body) : undefined;
  const statusSection = s.get('etcd_status');
  const status = statusSection?.rc === 0 ? parseEtcdEndpointStatus(statusSection.body) : undefined;
  const metrics = parsePrometheusSamples(parseHttp(s.get('etcd_metrics')).body);
  const hasLeaderMetric = metrics.get('etcd_server_has_leader');
  const etcdStats: NonNullable<HealthReport['etcd']> = {
    hasLeader: hasLeaderMetric !== undefined ? hasLeaderMetric === 1 : status?.leader !== undefined ? status.leader !== 0 : undefined,
    dbSizeBytes: status?.dbSize ?? metrics.get('etcd_mvcc_db_total_size_in_bytes'),
    quotaBytes: metrics.get('etcd_server_quota_backend_bytes'),
    revision: status?.revision ?? metricRevision(metrics.get('etcd_debugging_mvcc_current_revision')),
  };
  const facts = [
    status?.version ? `version ${status.version}` : undefined,
    etcdStats.hasLeader === undefined ? undefined : etcdStats.hasLeader ? 'has a leader' : 'NO LEADER',
    etcdStats.dbSizeBytes !== undefined
      ? `db ${mib(etcdStats.dbSizeBytes)}${etcdStats.quotaBytes ? ` of ${mib(etcdStats.quotaBytes)} quota` : ''}`
      : undefined,
  ].filter(Boolean);
  let etcd: ComponentHealth;
  if (parsedHealth) {
    etcd = parsedHealth.healthy
      ? { component: 'etcd', up: true, detail: ['healthy (/health)', ...facts].join(', ') }
      : {
          component: 'etcd',
          up: false,
          detail: `unhealthy (/health)${parsedHealth.reason ? `: ${parsedHealth.reason}` : ''}${facts.length ? `; ${facts.join(', ')}` : ''}`,
        };
  } else if (status) {
    etcd = { component: 'etcd', up: true, detail: ['endpoint status ok', ...facts].join(', ') };
  } else {
    const why = (statusSection?.body ?? '').split('\n').filter(Boolean).slice(-1)[0]?.slice(0, 200);
    const healthWhy = health.rc === 0 ? `/health answered HTTP ${health.status}` : curlFailure(health, `${ETCD_METRICS_URL}/health`, t);
    etcd = {
      component: 'etcd',
      up: false,
      detail: `${healthWhy}; etcdctl endpoint status failed${statusSection?.rc === 124 ? ` (timed out after ${t} s)` : why ? `: ${why}` : ''}`,
    };
  }

  const listening = s.get('listening')?.body ?? '';
  const scheduler = healthzComponent('kube-scheduler', s.get('scheduler'), SCHEDULER_HEALTHZ, 10259, listening, t);
  const controllerManager = healthzComponent(
    'kube-controller-manager',
    s.get('controller_manager'),
    CONTROLLER_MANAGER_HEALTHZ,
    10257,
    listening,
    t,
  );

  const diskSection = s.get('disk');
  const disk = diskSection ? parseDisk(diskSection.body) : undefined;
  if (!disk)
    problems.push(
      `disk: cannot measure the etcd data dir's filesystem${diskSection?.body ? `: ${diskSection.body.split('\n').slice(-1)[0]}` : ''}`,
    );

  const certificates: CertificateExpiry[] = [];
  for (const c of parseCertificateBlocks(s.get('certs')?.body ?? '')) {
    if (c.missing) continue; // as kubeadm prints !MISSING!: e.g. no super-admin.conf before kubeadm 1.29
    const expiry = certificateExpiry(c.text);
    if ('error' in expiry) {
      problems.push(`certificate ${c.name} (${c.path}): cannot read its expiry: ${expiry.error}`);
      continue;
    }
    certificates.push({ name: c.name, path: c.path, notAfter: expiry.notAfter });
  }
  if (!s.has('certs')) problems.push('certificates: the probe printed nothing');

  const caSection = s.get('ca');
  const caPem = caSection?.rc === 0 && caSection.body.includes('-----BEGIN CERTIFICATE-----') ? `${caSection.body.trim()}\n` : undefined;
  return { etcd, scheduler, controllerManager, etcdStats, disk, certificates, caPem, problems };
}

/** Runs the probe script over an open SSH session (one remote command); resolves undefined when it overran `guardMs`. */
export async function probeNode(
  s: NodeSession,
  cluster: ClusterConfig,
  timeoutSeconds: number,
  guardMs: number,
): Promise<NodeProbeResult | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const overran = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), guardMs)));
  try {
    const r = await Promise.race([s.run(['sh', '-c', nodeProbeScript(cluster, timeoutSeconds)], { allowFailure: true }), overran]);
    return r ? interpretNodeProbe(r.stdout, timeoutSeconds) : undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** etcd's revision gauge is a float64: a revision only where it is exact. */
function metricRevision(value: number | undefined): Revision | undefined {
  return value !== undefined && Number.isSafeInteger(value) && value >= 0 ? String(value) : undefined;
}
