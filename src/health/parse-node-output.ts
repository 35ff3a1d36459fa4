import { revisionFromJson, type Revision } from '../etcd/revision';
/**
 * Parsers for what the node probe prints (src/health/node-probe.ts): one round trip returns every probe's output as
 * sections, each headed `@@lifeboat <name> <exit code>`. Pure functions, unit-tested on recorded output.
 */

export interface Section {
  /** Exit code of the probe's command; undefined when it never finished (the section file has no code). */
  rc?: number;
  body: string;
}

export function parseSections(stdout: string): Map<string, Section> {
  const sections = new Map<string, Section>();
  let current: { name: string; rc?: number; lines: string[] } | undefined;
  const flush = () => {
    if (current) sections.set(current.name, { rc: current.rc, body: current.lines.join('\n').replace(/\n+$/, '') });
  };
  for (const line of stdout.split('\n')) {
    const m = /^@@lifeboat (\S+)(?: (\d+))?\s*$/.exec(line);
    if (m) {
      flush();
      current = { name: m[1], rc: m[2] === undefined ? undefined : Number(m[2]), lines: [] };
    } else if (current) {
      current.lines.push(line);
    }
  }
  flush();
  return sections;
}

export interface HttpResult {
  /** curl's exit code (0 ok, 7 refused, 28 timed out, 127 no curl). */
  rc?: number;
  /** HTTP status, 0 when no answer. */
  status: number;
  body: string;
}

/** curl output written with `-w '\n@@status %{http_code}'`: the body, then the status line. */
export function parseHttp(section: Section | undefined): HttpResult {
  if (!section) return { status: 0, body: '' };
  const lines = section.body.split('\n');
  let status = 0;
  const at = lines.findIndex((l) => /^@@status \d+$/.test(l.trim()));
  if (at >= 0) {
    status = Number(lines[at].trim().split(' ')[1]);
    lines.splice(at, 1);
  }
  return { rc: section.rc, status, body: lines.join('\n').trim() };
}

/** What curl's exit code means, for a component's detail line. */
export function curlFailure(r: HttpResult, url: string, timeoutSeconds: number): string {
  switch (r.rc) {
    case 7:
      return `connection refused at ${url}`;
    case 28:
      return `no answer from ${url} within ${timeoutSeconds} s`;
    case 127:
      return 'curl is not installed on the node';
    case 35:
    case 60:
      return `TLS handshake with ${url} failed`;
    default: {
      const last = r.body.split('\n').filter(Boolean).pop();
      return `${url}: ${r.status ? `HTTP ${r.status}` : `curl exit ${r.rc ?? '?'}`}${last ? ` (${last.slice(0, 200)})` : ''}`;
    }
  }
}

/** Prometheus text lines `name{labels} value` -> name -> value (the first sample of each name; labels ignored). */
export function parsePrometheusSamples(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line.trim());
    if (!m || line.startsWith('#')) continue;
    const value = Number(m[2]);
    if (!samples.has(m[1]) && !Number.isNaN(value)) samples.set(m[1], value);
  }
  return samples;
}

export interface EtcdEndpointStatus {
  version?: string;
  dbSize?: number;
  leader?: number;
  memberId?: number;
  /** etcd's current revision (the response header's), read losslessly from the text. */
  revision?: Revision;
}

/** `etcdctl endpoint status -w json`: [{"Endpoint": ..., "Status": {"header": {...}, "version", "dbSize", "leader", ...}}] */
export function parseEtcdEndpointStatus(text: string): EtcdEndpointStatus | undefined {
  const start = text.indexOf('[');
  if (start < 0) return undefined;
  try {
    const parsed = JSON.parse(text.slice(start)) as {
      Status?: { version?: string; dbSize?: number; leader?: number; header?: { member_id?: number; revision?: number } };
    }[];
    const status = parsed[0]?.Status;
    if (!status) return undefined;
    return {
      version: status.version,
      dbSize: status.dbSize,
      leader: status.leader,
      memberId: status.header?.member_id,
      revision: revisionFromJson(text.slice(start)),
    };
  } catch {
    return undefined;
  }
}

/** etcd's /health answer: {"health":"true","reason":""} (3.4: no reason). */
export function parseEtcdHealth(body: string): { healthy: boolean; reason?: string } | undefined {
  try {
    const h = JSON.parse(body) as { health?: string | boolean; reason?: string };
    if (h.health === undefined) return undefined;
    return { healthy: h.health === true || h.health === 'true', reason: h.reason || undefined };
  } catch {
    return undefined;
  }
}

/** Output of the disk probe: the path measured, then `df -B1 --output=avail,size` data line. */
export function parseDisk(body: string): { path: string; freeBytes: number; totalBytes: number } | undefined {
  const lines = body
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const path = lines[0];
  const numbers = lines
    .slice(1)
    .map((l) => /^(\d+)\s+(\d+)$/.exec(l))
    .find((m) => m);
  if (!path || !path.startsWith('/') || !numbers) return undefined;
  return { path, freeBytes: Number(numbers[1]), totalBytes: Number(numbers[2]) };
}

export interface CertificateBlock {
  name: string;
  path: string;
  /** What the node printed for it: a PEM certificate, or a kubeconfig's base64 client-certificate-data. */
  text: string;
  missing?: boolean;
}

/** Blocks headed `@@cert <name> <path>`, each followed by `missing` or the certificate as the node holds it. */
export function parseCertificateBlocks(body: string): CertificateBlock[] {
  const out: CertificateBlock[] = [];
  for (const line of body.split('\n')) {
    const m = /^@@cert (\S+) (.*)$/.exec(line);
    if (m) out.push({ name: m[1], path: m[2], text: '' });
    else if (out.length > 0) out[out.length - 1].text += `${line}\n`;
  }
  return out.map((b) => (b.text.trim() === 'missing' ? { ...b, text: '', missing: true } : { ...b, text: b.text.trim() }));
}

/** The failing checks of a /healthz or /readyz answer ("[-]etcd failed: reason withheld"), for a detail line. */
export function failedChecks(body: string): string {
  const failed = body
    .split('\n')
    .filter((l) => l.startsWith('[-]'))
    .map((l) => l.slice(3).trim());
  return failed.length ? failed.join('; ') : (body.split('\n').filter(Boolean).slice(-1)[0]?.slice(0, 200) ?? '');
}
