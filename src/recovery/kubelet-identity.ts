import { X509Certificate } from 'node:crypto';
import { parseKubeconfigYaml } from '../kube/kubeconfig';

/**
 * The kubelet's identity and configuration as kubeadm leaves them on a control-plane node: what a new node needs so
 * its kubelet comes back as the same Node (same client certificate, same settings) instead of an unjoined machine.
 * Paths are relative to the kubelet's folder (paths.kubeletDir, /var/lib/kubelet).
 */
export const KUBELET_FILES = ['config.yaml', 'kubeadm-flags.env', 'pki'] as const;

/** kubeadm's kubelet drop-in reads this file for the flags it manages (KUBELET_KUBEADM_ARGS). */
export const KUBEADM_FLAGS_FILE = 'kubeadm-flags.env';

interface RawKubeconfigUser {
  users?: { name: string; user: { 'client-certificate-data'?: string; 'client-certificate'?: string } }[];
  contexts?: { name: string; context: { user: string } }[];
  'current-context'?: string;
}

/**
 * Where kubelet.conf keeps the kubelet's client certificate: embedded (as `kubeadm init` first writes it) or a file
 * (after kubeadm's kubelet-finalize phase: /var/lib/kubelet/pki/kubelet-client-current.pem, rotated by the kubelet).
 */
export function kubeletCertificateSource(kubeletConf: string): { pem: string } | { file: string } {
  const kc = parseKubeconfigYaml<RawKubeconfigUser>(kubeletConf);
  const ctxName = kc['current-context'] ?? kc.contexts?.[0]?.name;
  const userName = kc.contexts?.find((c) => c.name === ctxName)?.context.user;
  const user = kc.users?.find((u) => u.name === userName)?.user ?? kc.users?.[0]?.user;
  if (user?.['client-certificate-data']) return { pem: Buffer.from(user['client-certificate-data'], 'base64').toString('utf8') };
  if (user?.['client-certificate']) return { file: user['client-certificate'] };
  throw new Error('kubelet.conf names no client certificate (client-certificate-data or client-certificate)');
}

/** The Node name a kubelet certificate may act for: its CN is system:node:<name> (the Node authorizer's rule). */
export function nodeNameFromCertificate(pem: string): string {
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (!first) throw new Error('no PEM certificate in the kubelet client certificate file');
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(new X509Certificate(first).subject)?.[1];
  const name = cn?.startsWith('system:node:') ? cn.slice('system:node:'.length) : undefined;
  if (!name) throw new Error(`the kubelet client certificate's subject is "${cn ?? '(no CN)'}", not system:node:<name>`);
  return name;
}

/**
 * kubeadm-flags.env with the kubelet's node name pinned: a replacement machine has a hostname of its own, but its
 * kubelet must register as the Node its certificate names (NodeRestriction refuses anything else). An existing
 * --hostname-override is replaced; the file is otherwise kept as kubeadm wrote it.
 */
export function withHostnameOverride(flagsEnv: string, nodeName: string): string {
  const flag = `--hostname-override=${nodeName}`;
  const line = /^KUBELET_KUBEADM_ARGS=(["']?)(.*)\1[ \t]*$/m.exec(flagsEnv);
  if (!line) return `${flagsEnv.trim() ? flagsEnv.replace(/\n?$/, '\n') : ''}KUBELET_KUBEADM_ARGS="${flag}"\n`;
  const words = line[2].split(/\s+/).filter(Boolean);
  const kept: string[] = [];
  for (let i = 0; i < words.length; i++) {
    if (words[i] === '--hostname-override')
      i++; // the two-word form: its value goes too
    else if (!words[i].startsWith('--hostname-override=')) kept.push(words[i]);
  }
  return flagsEnv.replace(line[0], `KUBELET_KUBEADM_ARGS="${[...kept, flag].join(' ')}"`);
}
