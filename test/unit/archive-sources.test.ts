import { stringify } from 'yaml';
import { archiveSources, referencedSources } from '../../src/backup/archive-sources';
import { clusterSchema } from '../../src/config/schema';

const cluster = clusterSchema.parse({
  name: 'prod',
  nodes: [{ name: 'cp1', host: '10.0.0.10', hostKey: 'ssh-ed25519 AAAA' }],
  storage: { bucket: 'backups' },
});

const apiserver = (flags: string[], mounts: [string, string][]) =>
  stringify({
    spec: {
      containers: [
        {
          command: ['kube-apiserver', ...flags],
          volumeMounts: mounts.map(([name, mountPath]) => ({ name, mountPath })),
        },
      ],
      volumes: mounts.map(([name], i) => ({ name, hostPath: { path: mounts[i][1], type: 'DirectoryOrCreate' } })),
    },
  });

describe('what the control-plane archive holds beyond the fixed list', () => {
  it('adds the files the manifests reference under the kubernetes dir, names those elsewhere, skips what is covered', () => {
    const manifest = apiserver(
      [
        '--tls-cert-file=/etc/kubernetes/pki/apiserver.crt',
        '--encryption-provider-config=/etc/kubernetes/enc/config.yaml',
        '--audit-policy-file=/etc/kubernetes/audit/../audit-policy.yaml',
        '--admission-control-config-file=/srv/admission.yaml',
        '--audit-log-path=/var/log/kubernetes/audit.log',
      ],
      [
        ['pki', '/etc/kubernetes/pki'],
        ['enc', '/etc/kubernetes/enc'],
        ['k8s', '/etc/kubernetes'],
        ['srv', '/srv'],
      ],
    );
    const { extra, outside } = referencedSources(cluster, [manifest, manifest, 'not: [yaml'], archiveSources(cluster));
    expect(extra).toEqual([
      { dir: '/etc/kubernetes', name: 'enc/config.yaml' },
      { dir: '/etc/kubernetes', name: 'audit-policy.yaml' },
    ]);
    // The audit log is written, not read: not a file to archive.
    expect(outside).toEqual(['/srv/admission.yaml']);
  });

  it('archives every file a flag given twice names, and both files of a --tls-sni-cert-key pair', () => {
    const manifest = apiserver(
      [
        '--encryption-provider-config=/etc/kubernetes/enc/old.yaml',
        '--encryption-provider-config=/etc/kubernetes/enc/new.yaml',
        '--audit-policy-file=/etc/kubernetes/audit/a.yaml',
        '--audit-policy-file',
        '/srv/audit/b.yaml',
        '--tls-sni-cert-key=/etc/kubernetes/sni/a.crt,/etc/kubernetes/sni/a.key:*.example.com,example.com',
        '--tls-sni-cert-key=/etc/kubernetes/sni/b.crt,/etc/kubernetes/sni/b.key',
      ],
      [
        ['k8s', '/etc/kubernetes'],
        ['srv', '/srv'],
      ],
    );
    const { extra, outside } = referencedSources(cluster, [manifest], archiveSources(cluster));
    expect(extra.map((s) => s.name)).toEqual([
      'enc/old.yaml',
      'enc/new.yaml',
      'audit/a.yaml',
      'sni/a.crt',
      'sni/a.key',
      'sni/b.crt',
      'sni/b.key',
    ]);
    expect(outside).toEqual(['/srv/audit/b.yaml']);
  });
});
