import { X509Certificate } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { parse } from 'yaml';
import type { ClusterConfig } from '../config/schema';
import { flagsOf } from '../etcd/static-pod';
import { archivePathOf, referencedHostFiles, type PodManifest } from '../kube/static-pod-files';

/**
 * What a drill checks in a backup's control-plane archive, unpacked in the scratch dir: the files a rebuilt node
 * needs are there, the CA signs the API server's certificate, every file a static-pod manifest references was
 * archived (an --encryption-provider-config left behind makes every restored Secret unreadable), and when each
 * certificate expires.
 */
export interface ArchiveCheck {
  checks: string[];
  problems: string[];
  certificates: { file: string; notAfter: string; daysLeft: number }[];
  /** Archive-relative paths of the files kube-apiserver's manifest references, by flag (for the throwaway apiserver). */
  apiserverFiles: Record<string, string>;
  /** kube-apiserver flags worth carrying over (service account issuer, service IP range). */
  apiserverFlags: Record<string, string>;
}

/** Archive-relative layout (kubeadm's, as the backup archives it: pki/, manifests/ and kubeconfigs beside them). */
function layout(cluster: ClusterConfig) {
  const pki = posix.basename(cluster.paths.pkiDir);
  return {
    pki,
    manifests: posix.basename(cluster.paths.manifestsDir),
    required: [
      [`${pki}/ca.crt`, `${pki}/ca.key`, 'the cluster CA'],
      [`${pki}/front-proxy-ca.crt`, `${pki}/front-proxy-ca.key`, 'the front-proxy CA'],
      [`${pki}/etcd/ca.crt`, `${pki}/etcd/ca.key`, 'the etcd CA'],
      [`${pki}/sa.key`, `${pki}/sa.pub`, 'the service-account keys'],
      [`${pki}/apiserver.crt`, `${pki}/apiserver.key`, "the API server's certificate"],
      ['admin.conf', 'controller-manager.conf', 'scheduler.conf', 'the kubeconfigs'],
      [
        `${posix.basename(cluster.paths.manifestsDir)}/etcd.yaml`,
        `${posix.basename(cluster.paths.manifestsDir)}/kube-apiserver.yaml`,
        'the manifests',
      ],
    ],
  };
}

const exists = (p: string) =>
  stat(p).then(
    (s) => s.isFile(),
    () => false,
  );

async function filesUnder(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(`${dir}/${rel}`, { withFileTypes: true }).catch(() => [])) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await filesUnder(dir, r)));
    else out.push(r);
  }
  return out;
}

export async function checkArchive(cluster: ClusterConfig, dir: string, now = new Date()): Promise<ArchiveCheck> {
  const { pki, manifests, required } = layout(cluster);
  const checks: string[] = [];
  const problems: string[] = [];
  const files = await filesUnder(dir);
  checks.push(`control-plane archive opened: ${files.length} files`);
  for (const group of required) {
    const what = group[group.length - 1];
    const missing: string[] = [];
    for (const f of group.slice(0, -1)) if (!(await exists(`${dir}/${f}`))) missing.push(f);
    if (missing.length) problems.push(`the control-plane archive lacks ${what}: ${missing.join(', ')}`);
  }

  const certificates: ArchiveCheck['certificates'] = [];
  for (const f of files.filter((x) => x.startsWith(`${pki}/`) && x.endsWith('.crt')).sort()) {
    try {
      const cert = new X509Certificate(await readFile(`${dir}/${f}`));
      const notAfter = new Date(cert.validTo);
      const daysLeft = Math.floor((notAfter.getTime() - now.getTime()) / 86_400_000);
      certificates.push({ file: f, notAfter: notAfter.toISOString(), daysLeft });
      if (daysLeft < 0) problems.push(`certificate ${f} expired on ${notAfter.toISOString()}`);
    } catch (err) {
      problems.push(`certificate ${f} does not parse: ${(err as Error).message}`);
    }
  }
  try {
    const ca = new X509Certificate(await readFile(`${dir}/${pki}/ca.crt`));
    const leaf = new X509Certificate(await readFile(`${dir}/${pki}/apiserver.crt`));
    if (leaf.checkIssued(ca) && leaf.verify(ca.publicKey)) checks.push(`${pki}/ca.crt signs ${pki}/apiserver.crt`);
    else problems.push(`${pki}/apiserver.crt is not signed by ${pki}/ca.crt: a node rebuilt from this backup would not be trusted`);
  } catch {
    // missing or unparseable: named above
  }

  const apiserverFiles: Record<string, string> = {};
  const apiserverFlags: Record<string, string> = {};
  for (const m of files.filter((x) => x.startsWith(`${manifests}/`) && /\.ya?ml$/.test(x))) {
    const text = await readFile(`${dir}/${m}`, 'utf8');
    let refs: { flag: string; hostPath: string }[];
    try {
      refs = referencedHostFiles(text);
    } catch (err) {
      problems.push(`${m} does not parse: ${(err as Error).message}`);
      continue;
    }
    const missing: string[] = [];
    for (const r of refs) {
      const rel = archivePathOf(cluster, r.hostPath);
      if (!rel || !(await exists(`${dir}/${rel}`))) missing.push(`${r.hostPath} (${r.flag.startsWith('volume') ? r.flag : `--${r.flag}`})`);
      else if (m.endsWith('kube-apiserver.yaml')) apiserverFiles[r.flag] = rel;
    }
    if (missing.length)
      problems.push(
        `${m} references ${missing.length === 1 ? 'a file' : 'files'} the control-plane archive does not hold: ${missing.join(', ')}; a node rebuilt from this backup cannot start it`,
      );
    else checks.push(`${m}: all ${refs.length} referenced files are in the archive`);
    if (m.endsWith('kube-apiserver.yaml')) {
      const pod = parse(text) as PodManifest;
      const c = pod?.spec?.containers?.[0];
      const flags = flagsOf([...(c?.command ?? []), ...(c?.args ?? [])]);
      for (const f of ['service-account-issuer', 'service-cluster-ip-range', 'encryption-provider-config'])
        if (flags.has(f)) apiserverFlags[f] = flags.get(f)!;
    }
  }
  return { checks, problems, certificates, apiserverFiles, apiserverFlags };
}
