import { certificateExpiry, kubeadmCertificates, parseOpensslDate } from '../../src/health/certificates';
import { interpretNodeProbe, nodeProbeScript } from '../../src/health/node-probe';
import {
  failedChecks,
  parseCertificateBlocks,
  parseDisk,
  parseEtcdEndpointStatus,
  parseEtcdHealth,
  parseHttp,
  parsePrometheusSamples,
  parseSections,
} from '../../src/health/parse-node-output';
import { clusterSchema } from '../../src/config/schema';
import { formatHealthReport } from '../../src/cli/health';
import { healthScheduleFor, spreadOffsetMs } from '../../src/schedules/health-schedules';
import type { HealthReport } from '../../src/health/types';
import { checkClusterHealth } from '../../workflows';

const cluster = clusterSchema.parse({
  name: 'prod',
  nodes: [{ name: 'cp1', host: '10.0.0.10', hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl' }],
  storage: { bucket: 'etcd-backups' },
});

/** Output as the probe script prints it on a healthy kubeadm node (recorded from the sandbox, trimmed). */
/** A real certificate (P-256, CN=apiserver) made with `openssl req -x509 -days 365`: notAfter=Dec  4 16:31:30 2027 GMT. */
const CERT_PEM = `-----BEGIN CERTIFICATE-----
MIIBfjCCASOgAwIBAgIUHwxYmJFFX6gIV2GRtqDC5FAFzVYwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJYXBpc2VydmVyMB4XDTI2MTIwNDE2MzEzMFoXDTI3MTIwNDE2
MzEzMFowFDESMBAGA1UEAwwJYXBpc2VydmVyMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAE/iK+/RMzpKAKJ2Z5nlevbMqLYLSg3pmq3/eLCNvJ9GhDJ1I+EsY7poY/
N3uVznmdXiuG8lJ+Us7hDRCchKw1qqNTMFEwHQYDVR0OBBYEFEKMCyvKEzCadB/U
jf+RPs9BIwbgMB8GA1UdIwQYMBaAFEKMCyvKEzCadB/Ujf+RPs9BIwbgMA8GA1Ud
EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAPlrAEzKHHJrn/V62GizzwXw
0zDIE3AXe+X/m0lVUMNQAiEA858lElqJW4BvFRq8oRpozmQ1JDte9xHd4pYn745n
ssk=
-----END CERTIFICATE-----`;
/** The same certificate as a kubeconfig's client-certificate-data holds it. */
const CERT_BASE64 = Buffer.from(`${CERT_PEM}\n`).toString('base64');
const CERT_EXPIRY = '2027-12-04T16:31:30.000Z';

const healthy = [
  '@@lifeboat etcd_health 0',
  '{"health":"true","reason":""}',
  '@@status 200',
  '',
  '@@lifeboat etcd_metrics 0',
  'etcd_mvcc_db_total_size_in_bytes 2.097152e+06',
  'etcd_server_has_leader 1',
  'etcd_server_quota_backend_bytes 2.147483648e+09',
  '@@status 200',
  '',
  '@@lifeboat etcd_status 0',
  '[{"Endpoint":"https://127.0.0.1:2379","Status":{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":812,"raft_term":2},"version":"3.6.16","dbSize":2101248,"leader":10276657743932975437,"raftIndex":900,"raftTerm":2}}]',
  '',
  '@@lifeboat scheduler 0',
  'ok',
  '@@status 200',
  '',
  '@@lifeboat controller_manager 7',
  "curl: (7) Failed to connect to 127.0.0.1 port 10257 after 0 ms: Couldn't connect to server",
  '@@status 000',
  '',
  '@@lifeboat listening 0',
  '127.0.0.1:2381',
  '10.0.0.10:2379',
  '',
  '@@lifeboat disk 0',
  '/var/lib/etcd',
  ' 41234567168 105088212992',
  '',
  '@@lifeboat certs 0',
  '@@cert admin.conf /etc/kubernetes/admin.conf',
  CERT_BASE64,
  '@@cert apiserver /etc/kubernetes/pki/apiserver.crt',
  CERT_PEM,
  '@@cert super-admin.conf /etc/kubernetes/super-admin.conf',
  'missing',
  '@@cert etcd-peer /etc/kubernetes/pki/etcd/peer.crt',
  'cat: /etc/kubernetes/pki/etcd/peer.crt: Permission denied',
  '@@cert ca /etc/kubernetes/pki/ca.crt',
  CERT_PEM,
  '',
  '@@lifeboat ca 0',
  '-----BEGIN CERTIFICATE-----',
  'MIIB',
  '-----END CERTIFICATE-----',
  '',
].join('\n');

describe('health probe parsers', () => {
  it('splits the script output into sections with exit codes', () => {
    const s = parseSections(healthy);
    expect([...s.keys()]).toEqual([
      'etcd_health',
      'etcd_metrics',
      'etcd_status',
      'scheduler',
      'controller_manager',
      'listening',
      'disk',
      'certs',
      'ca',
    ]);
    expect(s.get('controller_manager')!.rc).toBe(7);
    expect(parseSections('@@lifeboat ca \n').get('ca')).toEqual({ rc: undefined, body: '' });
  });

  it('reads curl answers, etcd health, status and metrics', () => {
    const s = parseSections(healthy);
    expect(parseHttp(s.get('scheduler'))).toEqual({ rc: 0, status: 200, body: 'ok' });
    expect(parseEtcdHealth('{"health":"false","reason":"RAFT NO LEADER"}')).toEqual({ healthy: false, reason: 'RAFT NO LEADER' });
    expect(parseEtcdHealth('{"health":"true"}')).toEqual({ healthy: true });
    expect(parseEtcdHealth('not json')).toBeUndefined();
    expect(parseEtcdEndpointStatus(s.get('etcd_status')!.body)).toMatchObject({ version: '3.6.16', dbSize: 2101248 });
    expect(parseEtcdEndpointStatus('Error: context deadline exceeded')).toBeUndefined();
    const m = parsePrometheusSamples(parseHttp(s.get('etcd_metrics')).body);
    expect(m.get('etcd_server_quota_backend_bytes')).toBe(2147483648);
    expect(m.get('etcd_server_has_leader')).toBe(1);
    expect(parsePrometheusSamples('# HELP x y\nfoo{a="b"} 3\nfoo{a="c"} 4\n').get('foo')).toBe(3);
  });

  it('reads df output, the certificates as the node printed them (PEM or kubeconfig data) and their expiry', () => {
    expect(parseDisk('/var/lib\n  100 200\n')).toEqual({ path: '/var/lib', freeBytes: 100, totalBytes: 200 });
    expect(parseDisk('df: /x: No such file')).toBeUndefined();
    expect(parseOpensslDate('notAfter=Jan  5 01:02:03 2027 GMT')).toBe('2027-01-05T01:02:03.000Z');
    expect(parseOpensslDate('notAfter=Nov 25 09:45:12 2027 GMT')).toBe('2027-11-25T09:45:12.000Z');
    expect(parseOpensslDate('garbage')).toBeUndefined();
    expect(parseCertificateBlocks('@@cert a /x\nmissing\n@@cert b /a path/y\n-----BEGIN\nAB\n@@cert c /z\n')).toEqual([
      { name: 'a', path: '/x', text: '', missing: true },
      { name: 'b', path: '/a path/y', text: '-----BEGIN\nAB' },
      { name: 'c', path: '/z', text: '' },
    ]);
    expect(certificateExpiry(CERT_PEM)).toEqual({ notAfter: CERT_EXPIRY });
    expect(certificateExpiry(CERT_BASE64)).toEqual({ notAfter: CERT_EXPIRY });
    expect(certificateExpiry('cat: /x: No such file or directory')).toEqual({ error: 'cat: /x: No such file or directory' });
    expect(certificateExpiry('')).toEqual({ error: 'the node printed nothing' });
    expect(certificateExpiry('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----')).toMatchObject({
      error: expect.stringMatching(/^not a certificate/),
    });
    expect(failedChecks('[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed')).toBe('etcd failed: reason withheld');
  });

  it('turns the output into component states and facts', () => {
    const r = interpretNodeProbe(healthy, 5);
    expect(r.etcd).toMatchObject({ component: 'etcd', up: true });
    expect(r.etcd.detail).toMatch(/healthy.*version 3\.6\.16.*has a leader.*db 2\.0 MiB of 2048\.0 MiB quota/);
    expect(r.etcdStats).toEqual({ hasLeader: true, dbSizeBytes: 2101248, quotaBytes: 2147483648, revision: '812' });
    expect(r.scheduler).toEqual({ component: 'kube-scheduler', up: true, detail: 'https://127.0.0.1:10259/healthz: ok' });
    expect(r.controllerManager).toMatchObject({ up: false, detail: 'connection refused at https://127.0.0.1:10257/healthz' });
    expect(r.disk).toEqual({ path: '/var/lib/etcd', freeBytes: 41234567168, totalBytes: 105088212992 });
    expect(r.certificates).toEqual(
      ['admin.conf', 'apiserver', 'ca'].map((name) => expect.objectContaining({ name, notAfter: CERT_EXPIRY })),
    );
    expect(r.problems).toEqual([expect.stringMatching(/^certificate etcd-peer .*cannot read its expiry/)]);
    expect(r.caPem).toBe('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  });

  it('falls back to etcdctl when the metrics port is not there, and reports a dead etcd with why', () => {
    const noMetrics = healthy
      .replace('{"health":"true","reason":""}\n@@status 200', 'curl: (7) refused\n@@status 000')
      .replace('@@lifeboat etcd_health 0', '@@lifeboat etcd_health 7')
      .replace(/etcd_mvcc[^\n]*\n|etcd_server[^\n]*\n/g, '');
    const r = interpretNodeProbe(noMetrics, 5);
    expect(r.etcd).toMatchObject({ up: true, detail: expect.stringMatching(/^endpoint status ok/) });
    expect(r.etcdStats).toEqual({ hasLeader: true, dbSizeBytes: 2101248, quotaBytes: undefined, revision: '812' });
    const dead = noMetrics.replace(/@@lifeboat etcd_status 0\n[^\n]*\n/, '@@lifeboat etcd_status 124\nError: context deadline exceeded\n');
    const d = interpretNodeProbe(dead, 5);
    expect(d.etcd.up).toBe(false);
    expect(d.etcd.detail).toMatch(
      /connection refused at http:\/\/127\.0\.0\.1:2381\/health; etcdctl endpoint status failed \(timed out after 5 s\)/,
    );
  });

  it('without curl on the node, a listening port is all that is seen', () => {
    const noCurl = healthy
      .replace('@@lifeboat scheduler 0\nok\n@@status 200', '@@lifeboat scheduler 127\nsh: 1: curl: not found')
      .replace('127.0.0.1:2381\n', '127.0.0.1:2381\n127.0.0.1:10259\n');
    expect(interpretNodeProbe(noCurl, 5).scheduler).toMatchObject({ up: true, detail: expect.stringMatching(/curl is not installed/) });
  });

  it('builds the node script with every config value quoted and every kubeadm certificate', () => {
    const script = nodeProbeScript(cluster, 5);
    expect(script).toContain('cert admin.conf kubeconfig /etc/kubernetes/admin.conf');
    // Public certificates only: no key leaves the node, and no openssl process per certificate runs there.
    expect(script).not.toMatch(/key-data|openssl/);
    expect(script).toContain('etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt');
    expect(script).toContain(
      "'^(etcd_server_has_leader|etcd_server_quota_backend_bytes|etcd_mvcc_db_total_size_in_bytes|etcd_debugging_mvcc_current_revision|@@status) '",
    );
    expect(kubeadmCertificates(cluster).map((c) => c.name)).toEqual([
      'admin.conf',
      'apiserver',
      'apiserver-etcd-client',
      'apiserver-kubelet-client',
      'controller-manager.conf',
      'etcd-healthcheck-client',
      'etcd-peer',
      'etcd-server',
      'front-proxy-client',
      'scheduler.conf',
      'super-admin.conf',
      'ca',
      'etcd-ca',
      'front-proxy-ca',
    ]);
  });

  it('schedules health checks every health.interval, overlap SKIP', () => {
    const s = healthScheduleFor(clusterSchema.parse({ ...cluster, health: { interval: '30s' } }), 'lifeboat');
    expect(s.scheduleId).toBe('health-prod');
    expect(s.spec.intervals).toEqual([{ every: 30_000, offset: spreadOffsetMs('prod', 30_000) }]);
    // Typed starts: the workflow function itself, never its name as a string.
    expect(s.action).toMatchObject({
      workflowType: checkClusterHealth,
      workflowId: 'health-prod',
      args: [{ cluster: 'prod' }],
      staticSummary: 'health check of prod',
    });
    expect(s.policies).toMatchObject({ overlap: 'SKIP', catchupWindow: 30_000 });
  });

  it("spreads a fleet's checks over the interval: the same second for a cluster every time, different across clusters", () => {
    const names = Array.from({ length: 100 }, (_, i) => `edge-${i}`);
    const offsets = names.map((n) => spreadOffsetMs(n, 60_000));
    expect(offsets).toEqual(names.map((n) => spreadOffsetMs(n, 60_000)));
    expect(offsets.every((o) => o >= 0 && o < 60_000 && o % 1000 === 0)).toBe(true);
    // A hundred clusters over 60 seconds: no second holds more than a handful.
    const perSecond = new Map<number, number>();
    for (const o of offsets) perSecond.set(o, (perSecond.get(o) ?? 0) + 1);
    expect(perSecond.size).toBeGreaterThan(40);
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(6);
    expect(spreadOffsetMs('prod', 1000)).toBe(0);
  });

  it('prints the report as a table, certificates soonest first', () => {
    const report: HealthReport = {
      cluster: 'prod',
      node: 'cp1',
      checkedAt: '2026-01-01T00:00:00.000Z',
      components: [
        { component: 'kube-apiserver', up: true, detail: 'ok' },
        { component: 'etcd', up: true, detail: 'ok' },
        { component: 'kube-scheduler', up: false, detail: 'connection refused' },
        { component: 'kube-controller-manager', up: true, detail: 'ok' },
        { component: 'node', up: true, detail: 'ssh ok' },
      ],
      etcd: { hasLeader: true, dbSizeBytes: 1048576, quotaBytes: 2147483648 },
      disk: { path: '/var/lib/etcd', freeBytes: 10 * 1073741824, totalBytes: 20 * 1073741824 },
      certificates: [
        { name: 'ca', path: '/etc/kubernetes/pki/ca.crt', notAfter: '2035-01-01T00:00:00.000Z' },
        { name: 'apiserver', path: '/etc/kubernetes/pki/apiserver.crt', notAfter: '2026-01-31T00:00:00.000Z' },
      ],
      newestBackup: { key: 'k', created: '2025-12-31T23:00:00.000Z', ageSeconds: 3600, sizeBytes: 1048576 },
      problems: ['kube-scheduler down on node cp1: connection refused'],
    };
    const text = formatHealthReport(report, new Date('2026-01-01T00:00:00Z'));
    expect(text).toMatch(/kube-scheduler\s+DOWN\s+connection refused/);
    expect(text).toMatch(/etcd:\s+has a leader, db 1\.0 MiB of 2048\.0 MiB quota \(0\.0%\)/);
    expect(text.indexOf('apiserver  2026-01-31  30 days left')).toBeLessThan(text.indexOf('ca  '));
    expect(text).toMatch(/backup:\s+newest 60 min old/);
  });
});
