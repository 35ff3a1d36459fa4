import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import type { ClusterConfig } from '../config/schema';
import { parseKubeconfigYaml } from '../kube/kubeconfig';
import { archivePathOf } from '../kube/static-pod-files';
import { kubeletCertificateSource, nodeNameFromCertificate } from '../recovery/kubelet-identity';
import { archivedFile } from './archived-files';

/** One certificate a restored control plane would use, where the archive holds it, and when it expires. */
export interface DrillCertificate {
  /** Archive-relative: a pki/ certificate, a kubeconfig (its embedded client certificate), or the file a kubeconfig names. */
  file: string;
  /** For a kubeconfig's client certificate: the kubeconfig and its user entry. */
  kubeconfig?: string;
  user?: string;
  notAfter: string;
  daysLeft: number;
}

/** A kubeconfig of the archive: archive-relative, and where it was on the node (a relative path in it is relative to that). */
export interface ArchivedKubeconfig {
  file: string;
  hostPath: string;
}

interface RawKubeconfigUsers {
  users?: {
    name?: string;
    user?: { 'client-certificate-data'?: string; 'client-certificate'?: string; 'client-key-data'?: string; 'client-key'?: string };
  }[];
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');
const label = (c: Omit<DrillCertificate, 'notAfter' | 'daysLeft'>) =>
  c.user === undefined ? c.file : c.file === c.kubeconfig ? `${c.file} (user ${c.user})` : `${c.file} (${c.kubeconfig}, user ${c.user})`;

/**
 * Every certificate a control plane rebuilt from the archive would use, checked the same way: kubeadm's pki/*.crt,
 * the client certificate of every user of every kubeconfig (embedded, or the file it names — the kubelet's rotated
 * /var/lib/kubelet/pki/kubelet-client-current.pem), its key beside it and its signature by the API server's client
 * CA, and the kubelet identity a new node takes over. An expired certificate, one that does not parse, a file a
 * kubeconfig names that the archive lacks: each is a problem naming where the certificate came from.
 */
export async function checkCertificates(
  cluster: ClusterConfig,
  dir: string,
  files: string[],
  kubeconfigs: ArchivedKubeconfig[],
  /** Archive-relative bundle the API server checks client certificates against (its --client-ca-file). */
  clientCaFile: string | undefined,
  now: Date,
): Promise<{ checks: string[]; problems: string[]; certificates: DrillCertificate[] }> {
  const checks: string[] = [];
  const problems: string[] = [];
  const certificates: DrillCertificate[] = [];
  const read = async (rel: string) => {
    const at = await archivedFile(cluster, dir, rel);
    return at === undefined ? undefined : readFile(`${dir}/${at}`, 'utf8');
  };
  /** Records a certificate's expiry; an expired one is a problem, as a component would refuse it. */
  const record = (from: Omit<DrillCertificate, 'notAfter' | 'daysLeft'>, pem: string): X509Certificate | undefined => {
    const first = pem.match(PEM_CERTIFICATE)?.[0];
    try {
      if (!first) throw new Error('no PEM certificate in it');
      const cert = new X509Certificate(first);
      const notAfter = new Date(cert.validTo);
      const daysLeft = Math.floor((notAfter.getTime() - now.getTime()) / 86_400_000);
      certificates.push({ ...from, notAfter: notAfter.toISOString(), daysLeft });
      if (daysLeft < 0) problems.push(`certificate ${label(from)} expired on ${notAfter.toISOString()}`);
      return cert;
    } catch (err) {
      problems.push(`certificate ${label(from)} does not parse: ${(err as Error).message}`);
      return undefined;
    }
  };

  const pki = posix.basename(cluster.paths.pkiDir);
  for (const f of files.filter((x) => x.startsWith(`${pki}/`) && x.endsWith('.crt')).sort()) {
    const pem = await read(f);
    if (pem === undefined) problems.push(`certificate ${f} is a link to a file the control-plane archive does not hold`);
    else record({ file: f }, pem);
  }

  const caText = clientCaFile === undefined ? undefined : await read(clientCaFile);
  const clientCas = (caText?.match(PEM_CERTIFICATE) ?? []).flatMap((p) => {
    try {
      return [new X509Certificate(p)];
    } catch {
      return []; // named with pki/*.crt above
    }
  });
  /** A file a kubeconfig names, relative to the kubeconfig's own folder on the node as kubectl and client-go read it. */
  const locate = async (kc: ArchivedKubeconfig, path: string) => {
    const hostPath = posix.resolve(posix.dirname(kc.hostPath), path);
    const rel = archivePathOf(cluster, hostPath);
    const text = rel === undefined ? undefined : await read(rel);
    return { hostPath, rel: rel ?? hostPath, text };
  };
  const named = async (kc: ArchivedKubeconfig, user: string, what: string, path: string) => {
    const f = await locate(kc, path);
    if (f.text === undefined)
      problems.push(
        `${kc.file} (user ${user}) names its client ${what} ${f.hostPath}, which the control-plane archive does not hold: a control plane rebuilt from this backup cannot use it`,
      );
    return f.text === undefined ? undefined : { rel: f.rel, text: f.text };
  };
  let clientCertificates = 0;
  for (const kc of kubeconfigs) {
    let users: RawKubeconfigUsers['users'];
    const text = await read(kc.file);
    if (text === undefined) continue;
    try {
      users = parseKubeconfigYaml<RawKubeconfigUsers | null>(text)?.users;
    } catch (err) {
      problems.push(`${kc.file} does not parse: ${(err as Error).message}`);
      continue;
    }
    for (const [i, entry] of (users ?? []).entries()) {
      const user = entry?.name ?? `#${i + 1}`;
      const u = entry?.user ?? {};
      let cert: { from: Omit<DrillCertificate, 'notAfter' | 'daysLeft'>; pem: string } | undefined;
      if (u['client-certificate-data'])
        cert = { from: { file: kc.file, kubeconfig: kc.file, user }, pem: b64(u['client-certificate-data']) };
      else if (u['client-certificate']) {
        const f = await named(kc, user, 'certificate', u['client-certificate']);
        if (f) cert = { from: { file: f.rel, kubeconfig: kc.file, user }, pem: f.text };
      }
      if (!cert) continue; // a token or an exec plugin: no certificate to check
      clientCertificates++;
      const x509 = record(cert.from, cert.pem);
      if (!x509) continue;
      const key = u['client-key-data']
        ? b64(u['client-key-data'])
        : u['client-key']
          ? (await named(kc, user, 'key', u['client-key']))?.text
          : undefined;
      if (key === undefined && !u['client-key'])
        problems.push(`${kc.file} (user ${user}) has a client certificate but no client key (client-key-data or client-key)`);
      else if (key !== undefined && !keyMatches(key, x509))
        problems.push(`${kc.file} (user ${user}): its client key does not belong to its client certificate ${label(cert.from)}`);
      if (clientCas.length && !clientCas.some((ca) => x509.checkIssued(ca) && x509.verify(ca.publicKey)))
        problems.push(
          `certificate ${label(cert.from)} is not signed by the API server's client CA (${clientCaFile}): a control plane rebuilt from this backup would refuse it`,
        );
    }
  }

  // The kubelet identity a new node takes over (src/recovery/kubelet-identity.ts): the same reading a recovery does.
  const kubeletConf = kubeconfigs.find((k) => k.file === 'kubelet.conf');
  const kubeletText = kubeletConf && (await read(kubeletConf.file));
  if (kubeletConf && kubeletText !== undefined) {
    try {
      const source = kubeletCertificateSource(kubeletText);
      // A file it names that the archive lacks was named with kubelet.conf's users above.
      const pem = 'pem' in source ? source.pem : (await locate(kubeletConf, source.file)).text;
      if (pem !== undefined)
        checks.push(`kubelet.conf: a new node takes over the kubelet identity of Node "${nodeNameFromCertificate(pem)}"`);
    } catch (err) {
      problems.push(`kubelet.conf: a new node cannot take over the kubelet's identity: ${(err as Error).message}`);
    }
  } else if (files.some((f) => f === `${posix.basename(cluster.paths.kubeletDir)}/config.yaml`))
    problems.push(
      "the control-plane archive holds the kubelet's config.yaml but no kubelet.conf: a new node cannot take over its identity",
    );

  const soonest = [...certificates].sort((a, b) => a.notAfter.localeCompare(b.notAfter))[0];
  checks.push(
    `certificates checked: ${certificates.length} (${clientCertificates} client certificates of ${kubeconfigs.length} kubeconfigs)${soonest ? `; the soonest to expire is ${label(soonest)}, on ${soonest.notAfter.slice(0, 10)} (${soonest.daysLeft} days)` : ''}`,
  );
  return { checks, problems, certificates };
}

/** The private key is the certificate's: the same public key. */
function keyMatches(keyPem: string, cert: X509Certificate): boolean {
  try {
    const spki = (k: ReturnType<typeof createPublicKey>) => k.export({ type: 'spki', format: 'der' });
    return spki(createPublicKey(createPrivateKey(keyPem))).equals(spki(cert.publicKey));
  } catch {
    return false;
  }
}
