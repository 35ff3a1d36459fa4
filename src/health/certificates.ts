import { X509Certificate } from 'node:crypto';
import type { ClusterConfig } from '../config/schema';

/** A certificate as `kubeadm certs check-expiration` lists it: a PEM file, or the client certificate inside a kubeconfig. */
export interface KubeadmCertificate {
  name: string;
  kind: 'x509' | 'kubeconfig';
  path: string;
}

/**
 * Every certificate `kubeadm certs check-expiration` reports, in its order: the leaf certificates (with the client
 * certificates embedded in admin.conf, super-admin.conf, controller-manager.conf and scheduler.conf), then the CAs.
 * kubelet.conf is not listed: the kubelet rotates its own client certificate.
 */
export function kubeadmCertificates(cluster: ClusterConfig): KubeadmCertificate[] {
  const { pkiDir, kubernetesDir } = cluster.paths;
  const pem = (name: string, file: string): KubeadmCertificate => ({ name, kind: 'x509', path: `${pkiDir}/${file}` });
  const conf = (name: string): KubeadmCertificate => ({ name, kind: 'kubeconfig', path: `${kubernetesDir}/${name}` });
  return [
    conf('admin.conf'),
    pem('apiserver', 'apiserver.crt'),
    pem('apiserver-etcd-client', 'apiserver-etcd-client.crt'),
    pem('apiserver-kubelet-client', 'apiserver-kubelet-client.crt'),
    conf('controller-manager.conf'),
    pem('etcd-healthcheck-client', 'etcd/healthcheck-client.crt'),
    pem('etcd-peer', 'etcd/peer.crt'),
    pem('etcd-server', 'etcd/server.crt'),
    pem('front-proxy-client', 'front-proxy-client.crt'),
    conf('scheduler.conf'),
    conf('super-admin.conf'),
    pem('ca', 'ca.crt'),
    pem('etcd-ca', 'etcd/ca.crt'),
    pem('front-proxy-ca', 'front-proxy-ca.crt'),
  ];
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `notAfter=Nov 25 09:45:12 2027 GMT` (openssl x509 -enddate) -> 2027-11-25T09:45:12.000Z; undefined if not that. */
export function parseOpensslDate(text: string): string | undefined {
  const m = /(?:notAfter=)?([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{2}):(\d{2}):(\d{2})\s+(\d{4})\s+GMT/.exec(text);
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[1]);
  if (month < 0) return undefined;
  const t = Date.UTC(Number(m[6]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

/**
 * The expiry of a certificate as the node printed it (PEM, or a kubeconfig's base64 client-certificate-data), read
 * here rather than by an openssl process per certificate on the node; what does not parse is said in a few words.
 */
export function certificateExpiry(text: string): { notAfter: string } | { error: string } {
  if (!text) return { error: 'the node printed nothing' };
  const pem = text.includes('-----BEGIN CERTIFICATE-----') ? text : Buffer.from(text.replace(/\s+/g, ''), 'base64').toString('latin1');
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) return { error: text.split('\n')[0].slice(0, 200) };
  try {
    const notAfter = parseOpensslDate(new X509Certificate(pem).validTo);
    return notAfter ? { notAfter } : { error: 'no expiry date in it' };
  } catch (err) {
    return { error: `not a certificate (${(err as Error).message})` };
  }
}
