import { stringify } from 'yaml';
import { clusterSchema } from '../../src/config/schema';
import { parseConfig } from '../../src/config/load';
import { archivePathOf, referencedHostFiles } from '../../src/kube/static-pod-files';
import { drillReportKeyOf, drilledColumn, parseDrillReport, type DrillReport } from '../../src/drill/report';
import { manifestKeyOf } from '../../src/backup/object-keys';
import { drillInputProblems } from '../../workflows/drill-input';
import { mkdir, mkdtemp, readdir, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sweepStale } from '../../src/drill/processes';
import { portsInUse } from '../../src/drill/ssh-host';
import { ConfigError } from '../../src/config/load';

const cluster = clusterSchema.parse({
  name: 'prod',
  nodes: [{ name: 'cp1', host: '10.0.0.10', hostKey: 'ssh-ed25519 AAAA' }],
  storage: { bucket: 'backups' },
});

describe('restore drills: pure parts', () => {
  it('the drill input refuses hostile values naming the field', () => {
    expect(drillInputProblems({ cluster: 'prod' })).toEqual([]);
    expect(drillInputProblems({ cluster: 'prod', snapshot: 'lifeboat/prod/etcd/x-rev1.db.gz.enc' })).toEqual([]);
    for (const bad of ['prod; id', '', 'PROD', 'x'.repeat(100)]) expect(drillInputProblems({ cluster: bad }).join()).toMatch(/^cluster: /);
    for (const bad of ['a b', '$(id)', 'k'.repeat(2000), 7])
      expect(drillInputProblems({ cluster: 'prod', snapshot: bad as string }).join()).toMatch(/^snapshot: /);
    expect(drillInputProblems(null as never)).toEqual(['input: expected an object like {"cluster": "prod"}']);
    expect(drillInputProblems({ cluster: 'prod', node: 'cp1' } as never).join()).toMatch(/^input: unknown field "node"/);
  });

  it('finds every file a static-pod manifest references, through its hostPath mounts', () => {
    const manifest = stringify({
      spec: {
        containers: [
          {
            command: [
              'kube-apiserver',
              '--tls-cert-file=/etc/kubernetes/pki/apiserver.crt',
              '--encryption-provider-config=/etc/enc/config.yaml',
              '--etcd-servers=https://127.0.0.1:2379',
              '--audit-log-path=/var/log/audit.log',
              '--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt',
            ],
            volumeMounts: [
              { name: 'k8s-certs', mountPath: '/etc/kubernetes/pki' },
              { name: 'enc', mountPath: '/etc/enc' },
            ],
          },
        ],
        volumes: [
          { name: 'k8s-certs', hostPath: { path: '/etc/kubernetes/pki', type: 'DirectoryOrCreate' } },
          { name: 'enc', hostPath: { path: '/etc/kubernetes/encryption', type: 'DirectoryOrCreate' } },
          { name: 'kubeconfig', hostPath: { path: '/etc/kubernetes/scheduler.conf', type: 'FileOrCreate' } },
        ],
      },
    });
    expect(referencedHostFiles(manifest)).toEqual([
      { flag: 'tls-cert-file', hostPath: '/etc/kubernetes/pki/apiserver.crt' },
      { flag: 'encryption-provider-config', hostPath: '/etc/kubernetes/encryption/config.yaml' },
      { flag: 'kubelet-client-certificate', hostPath: '/etc/kubernetes/pki/apiserver-kubelet-client.crt' },
      { flag: 'volume kubeconfig', hostPath: '/etc/kubernetes/scheduler.conf' },
    ]);
    expect(archivePathOf(cluster, '/etc/kubernetes/pki/apiserver.crt')).toBe('pki/apiserver.crt');
    expect(archivePathOf(cluster, '/etc/kubernetes/encryption/config.yaml')).toBe('encryption/config.yaml');
    expect(archivePathOf(cluster, '/var/lib/kubelet/config.yaml')).toBe('kubelet/config.yaml');
    expect(archivePathOf(cluster, '/srv/secret.yaml')).toBeUndefined();
  });

  it('reports live beside their backup and are read back through a schema', () => {
    const key = 'lifeboat/prod/etcd/20261126T010000Z-rev42.manifest.json';
    expect(drillReportKeyOf(key)).toBe('lifeboat/prod/etcd/20261126T010000Z-rev42.drill.json');
    // Retention's orphan sweep finds a report's backup by the same key rule.
    expect(manifestKeyOf(drillReportKeyOf(key))).toBe(key);
    const report: DrillReport = {
      format: 'lifeboat-drill/v1',
      cluster: 'prod',
      manifestKey: key,
      result: 'passed',
      started: '2026-11-26T01:00:00.000Z',
      finished: '2026-11-26T01:01:00.000Z',
      durationSeconds: 60,
      checks: ['ok'],
      problems: [],
      countedThrough: 'api',
      counts: { matched: [{ resource: 'configmaps', expected: 3, actual: 3 }], differed: [] },
      sampled: { configmaps: 3 },
      certificates: [],
      passedOver: [],
      workflow: { workflowId: 'drill-prod', runId: 'r' },
      engineVersion: '0.1.0',
    };
    expect(parseDrillReport('k', JSON.stringify(report))).toEqual(report);
    expect(drilledColumn(report)).toBe('ok 2026-11-26');
    expect(drilledColumn({ ...report, result: 'failed' })).toBe('FAILED 2026-11-26');
    expect(drilledColumn(undefined)).toBe('never');
    expect(() => parseDrillReport('k', JSON.stringify({ ...report, result: 'maybe' }))).toThrow(
      /k is not a usable lifeboat drill report: result/,
    );
    expect(() => parseDrillReport('k', '{')).toThrow(/not JSON/);
  });

  it('the drill config section: defaults, versions and paths checked', () => {
    const config = parseConfig({}, 'test');
    expect(config.drill).toMatchObject({ enabled: false, scratchDir: '/var/lib/lifeboat/drills', etcd: {}, kubeApiserver: {} });
    expect(() => parseConfig({ drill: { etcd: { '3': '/opt/etcd' } } }, 'test')).toThrow(/drill\.etcd/);
    expect(() => parseConfig({ drill: { kubeApiserver: { '1.34': 'kube-apiserver' } } }, 'test')).toThrow(/drill\.kubeApiserver/);
    expect(() => parseConfig({ drill: { scratchDir: '/tmp/a b' } }, 'test')).toThrow(/drill\.scratchDir/);
  });

  it("a drill node is declared like a cluster node, and refused when it is one of a cluster's nodes", () => {
    const clusters = [
      { name: 'prod', nodes: [{ name: 'cp1', host: '10.0.0.10', hostKey: 'ssh-ed25519 AAAA' }], storage: { bucket: 'backups' } },
    ];
    const drillNode = { name: 'drill1', host: '10.0.0.20', hostKey: 'ssh-ed25519 BBBB', privateKey: { file: '/etc/lifeboat/id' } };
    const ok = parseConfig({ clusters, drill: { node: { ...drillNode, etcd: { '3.6': '/opt/etcd-3.6' } } } }, 'test');
    expect(ok.drill.node).toMatchObject({ name: 'drill1', host: '10.0.0.20', port: 22, user: 'root', etcd: { '3.6': '/opt/etcd-3.6' } });
    const problems = (raw: unknown) => {
      try {
        parseConfig(raw, 'test');
      } catch (err) {
        if (err instanceof ConfigError) return err.problems.join('\n');
        throw err;
      }
      return '';
    };
    // The cluster's own control-plane node (same host and port): refused, naming the field and the node.
    expect(problems({ clusters, drill: { node: { ...drillNode, host: '10.0.0.10' } } })).toMatch(
      /drill\.node\.host.*10\.0\.0\.10:22 is node "cp1" of cluster "prod": a drill never runs on a cluster's node/,
    );
    // Another port on that address is another sshd (a separate machine behind NAT, a VM): allowed.
    expect(parseConfig({ clusters, drill: { node: { ...drillNode, host: '10.0.0.10', port: 2222 } } }, 'test').drill.node?.port).toBe(2222);
    // Host keys are never ignored, as for a cluster's node; tool paths are checked like drill.etcd.
    expect(problems({ clusters, drill: { node: { ...drillNode, hostKey: undefined } } })).toMatch(/drill\.node\.hostKey/);
    expect(problems({ clusters, drill: { node: { ...drillNode, etcd: { '3.6': 'etcd' } } } })).toMatch(/drill\.node\.etcd/);
    expect(problems({ clusters, drill: { node: { ...drillNode, typo: 1 } } })).toMatch(/drill\.node/);
  });

  it('a free port on a drill node: the ports /proc/net/tcp{,6} lists (any state) are taken', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:0A2B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0',
      '   1: 0100007F:4E21 0100007F:0A2B 06 00000000:00000000 03:00000F4F 00000000     0        0 0 3 0000000000000000',
      '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0',
    ].join('\n');
    expect([...portsInUse(text)].sort((a, b) => a - b)).toEqual([22, 2603, 20001]);
  });

  it('sweeps only run dirs older than any drill attempt can run, and never signals a pid that is not theirs', async () => {
    const root = await mkdtemp(join(tmpdir(), 'lifeboat-sweep-'));
    for (const d of ['old', 'young']) await mkdir(join(root, d));
    // A recorded pid that is this test's own process: its command line does not name the dir, so it is left alone.
    await writeFile(join(root, 'old', 'pids'), `${process.pid}\n`);
    const fiveHoursAgo = new Date(Date.now() - 5 * 3_600_000);
    await utimes(join(root, 'old'), fiveHoursAgo, fiveHoursAgo);
    expect(await sweepStale(root, 4 * 3_600_000)).toEqual([join(root, 'old')]);
    expect(await readdir(root)).toEqual(['young']);
  });
});
