import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { kubeletCertificateSource, nodeNameFromCertificate, withHostnameOverride } from '../../src/recovery/kubelet-identity';

/** A self-signed certificate with the given subject (openssl, as the sandbox PKI makes them). */
function certificate(subject: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kubelet-cert-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(dir, 'k'),
        '-out',
        join(dir, 'c'),
        '-days',
        '1',
        '-subj',
        subject,
      ],
      { stdio: 'ignore' },
    );
    return readFileSync(join(dir, 'c'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the kubelet identity a new node takes over', () => {
  it('reads the Node name from the kubelet certificate (system:node:<name>), also from a cert+key file', () => {
    const pem = certificate('/O=system:nodes/CN=system:node:cp-1');
    expect(nodeNameFromCertificate(pem)).toBe('cp-1');
    expect(nodeNameFromCertificate(`${pem}-----BEGIN EC PRIVATE KEY-----\nxx\n-----END EC PRIVATE KEY-----\n`)).toBe('cp-1');
    expect(() => nodeNameFromCertificate(certificate('/CN=kubernetes-admin'))).toThrow(/"kubernetes-admin", not system:node:<name>/);
    expect(() => nodeNameFromCertificate('garbage')).toThrow(/no PEM certificate/);
  });

  it('finds the certificate in kubelet.conf: embedded (kubeadm init) or a file (after kubelet-finalize)', () => {
    const conf = (user: Record<string, string>) =>
      stringify({
        contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
        'current-context': 'c',
        users: [
          { name: 'other', user: {} },
          { name: 'u', user },
        ],
      });
    expect(kubeletCertificateSource(conf({ 'client-certificate-data': Buffer.from('PEM').toString('base64') }))).toEqual({ pem: 'PEM' });
    expect(kubeletCertificateSource(conf({ 'client-certificate': '/var/lib/kubelet/pki/kubelet-client-current.pem' }))).toEqual({
      file: '/var/lib/kubelet/pki/kubelet-client-current.pem',
    });
    expect(() => kubeletCertificateSource(conf({ token: 'x' }))).toThrow(/names no client certificate/);
  });

  it('pins the node name in kubeadm-flags.env, replacing any earlier override and keeping the other flags', () => {
    const kubeadm =
      'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10"\n';
    const pinned = withHostnameOverride(kubeadm, 'cp-1');
    expect(pinned).toBe(
      'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10 --hostname-override=cp-1"\n',
    );
    expect(withHostnameOverride(pinned, 'cp-1')).toBe(pinned); // a retried attempt changes nothing
    expect(withHostnameOverride('KUBELET_KUBEADM_ARGS="--hostname-override old --v=2"\n', 'cp-1')).toBe(
      'KUBELET_KUBEADM_ARGS="--v=2 --hostname-override=cp-1"\n',
    );
    expect(withHostnameOverride("KUBELET_KUBEADM_ARGS='--hostname-override=old'\n", 'cp-1')).toBe(
      'KUBELET_KUBEADM_ARGS="--hostname-override=cp-1"\n',
    );
    expect(withHostnameOverride('', 'cp-1')).toBe('KUBELET_KUBEADM_ARGS="--hostname-override=cp-1"\n');
    expect(withHostnameOverride('# kubeadm\n', 'cp-1')).toBe('# kubeadm\nKUBELET_KUBEADM_ARGS="--hostname-override=cp-1"\n');
  });
});

describe('a kubeconfig that does not parse', () => {
  it('is named by position only: the lines around the fault can hold its client key', () => {
    const broken = 'users:\n- name: admin\n  user:\n    client-key-data: TOPSECRETKEY: x\n';
    for (const read of [() => credentialsFromKubeconfig(broken), () => kubeletCertificateSource(broken)]) {
      let message = '';
      try {
        read();
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/at line 4, column \d+:$/);
      expect(message).not.toContain('TOPSECRETKEY');
    }
  });
});
