import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { parse } from 'yaml';
import { KUBECONFIGS } from '../backup/archive-sources';
import type { ClusterConfig } from '../config/schema';
import { flagsOf } from '../etcd/static-pod';
import { archivePathOf, referencedHostFiles, REPEATABLE_FILE_FLAGS, type PodManifest } from '../kube/static-pod-files';
import { archivedFile, filesUnder } from './archived-files';
import { checkCertificates, type ArchivedKubeconfig, type DrillCertificate } from './certificates';

/**
 * What a drill checks in a backup's control-plane archive, unpacked in the scratch dir: the files a rebuilt node
 * needs are there, the CA signs the API server's certificate, every file a static-pod manifest references was
 * archived (an --encryption-provider-config left behind makes every restored Secret unreadable; a flag given twice
 * names two files, both checked), and every certificate the rebuilt control plane would use (src/drill/certificates.ts).
 */
export interface ArchiveCheck {
  checks: string[];
  problems: string[];
  certificates: DrillCertificate[];
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

export async function checkArchive(cluster: ClusterConfig, dir: string, now = new Date()): Promise<ArchiveCheck> {
  const { pki, manifests, required } = layout(cluster);
  const checks: string[] = [];
  const problems: string[] = [];
  const files = await filesUnder(dir);
  const held = async (rel: string) => (await archivedFile(cluster, dir, rel)) !== undefined;
  checks.push(`control-plane archive opened: ${files.length} files`);
  for (const group of required) {
    const what = group[group.length - 1];
    const missing: string[] = [];
    for (const f of group.slice(0, -1)) if (!(await held(f))) missing.push(f);
    if (missing.length) problems.push(`the control-plane archive lacks ${what}: ${missing.join(', ')}`);
  }
  try {
    const ca = new X509Certificate(await readFile(`${dir}/${pki}/ca.crt`));
    const leaf = new X509Certificate(await readFile(`${dir}/${pki}/apiserver.crt`));
    if (leaf.checkIssued(ca) && leaf.verify(ca.publicKey)) checks.push(`${pki}/ca.crt signs ${pki}/apiserver.crt`);
    else problems.push(`${pki}/apiserver.crt is not signed by ${pki}/ca.crt: a node rebuilt from this backup would not be trusted`);
  } catch {
    // missing or unparseable: named above and with the certificates
  }

  const apiserverFiles: Record<string, string> = {};
  const apiserverFlags: Record<string, string> = {};
  // kubeadm's kubeconfigs, and any other a component's --kubeconfig (or authn/authz kubeconfig) names.
  const kubeconfigs = new Map<string, ArchivedKubeconfig>();
  for (const name of KUBECONFIGS) kubeconfigs.set(name, { file: name, hostPath: posix.join(cluster.paths.kubernetesDir, name) });
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
      const present = rel !== undefined && (await held(rel));
      if (!present) missing.push(`${r.hostPath} (${r.flag.startsWith('volume') ? r.flag : `--${r.flag}`})`);
      else if (!r.flag.startsWith('volume ') && r.flag.endsWith('kubeconfig')) kubeconfigs.set(rel, { file: rel, hostPath: r.hostPath });
      // Of a flag given twice, the API server uses the last: the throwaway one gets that file, or none when it is missing.
      if (m.endsWith('kube-apiserver.yaml')) {
        if (present) apiserverFiles[r.flag] = rel;
        else delete apiserverFiles[r.flag];
      }
    }
    if (missing.length)
      problems.push(
        `${m} references ${missing.length === 1 ? 'a file' : 'files'} the control-plane archive does not hold: ${missing.join(', ')}; a node rebuilt from this backup cannot start it`,
      );
    else checks.push(`${m}: all ${refs.length} referenced files are in the archive`);
    checks.push(...repeatedFlags(m, refs));
    if (m.endsWith('kube-apiserver.yaml')) {
      const pod = parse(text) as PodManifest;
      const c = pod?.spec?.containers?.[0];
      const flags = flagsOf([...(c?.command ?? []), ...(c?.args ?? [])]);
      for (const f of ['service-account-issuer', 'service-cluster-ip-range', 'encryption-provider-config'])
        if (flags.has(f)) apiserverFlags[f] = flags.get(f)!;
    }
  }

  const present = [...kubeconfigs.values()].filter((k) => files.includes(k.file));
  const certs = await checkCertificates(cluster, dir, files, present, apiserverFiles['client-ca-file'] ?? `${pki}/ca.crt`, now);
  checks.push(...certs.checks);
  problems.push(...certs.problems);
  return { checks, problems, certificates: certs.certificates, apiserverFiles, apiserverFlags };
}

/**
 * A file flag a manifest gives more than once: every file it names was archived and checked above; which of them the
 * component uses is said here (all of a repeatable flag, else the last), as kube-apiserver and etcd read their flags.
 */
function repeatedFlags(manifest: string, refs: { flag: string; hostPath: string }[]): string[] {
  const byFlag = new Map<string, string[]>();
  for (const r of refs) if (!r.flag.startsWith('volume ')) byFlag.set(r.flag, [...(byFlag.get(r.flag) ?? []), r.hostPath]);
  const out: string[] = [];
  for (const [flag, paths] of byFlag) {
    if (paths.length < 2) continue;
    const uses = REPEATABLE_FILE_FLAGS.has(flag) ? 'every one' : `the last, ${paths[paths.length - 1]}`;
    out.push(
      `${manifest} gives --${flag} ${paths.length} times (${paths.join(', ')}): all archived and checked; the component uses ${uses}`,
    );
  }
  return out;
}
