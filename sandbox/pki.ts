/**
 * Creates a kubeadm-shaped control-plane PKI (the files under /etc/kubernetes of a node) with the
 * openssl CLI, for test harnesses and demos that need a real apiserver and etcd to accept it.
 *
 * Certificate keys are EC P-256: openssl spends ~0.4 s of CPU per RSA 2048 key, so the 17 keys of a
 * PKI would take several seconds on 2 cores, while P-256 keys take milliseconds (kubeadm supports
 * them too, as `encryptionAlgorithm: ECDSA-P256`). Only sa.key is RSA, as kubeadm lays it out.
 * Keys use the PEM flavours kubeadm writes: SEC1 "EC PRIVATE KEY" and PKCS#1 "RSA PRIVATE KEY".
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';

export interface PkiOptions {
  /** Directory standing for /etc/kubernetes of the node. */
  root: string;
  nodeName: string;
  nodeIPs: string[];
  /** Written into every kubeconfig; its host is also an apiserver SAN, as kubeadm does for controlPlaneEndpoint. */
  apiServerUrl: string;
}

/** Absolute paths of what createControlPlanePki wrote. */
export interface Pki {
  root: string;
  pkiDir: string;
  caCert: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  apiserverKubeletClientCert: string;
  apiserverKubeletClientKey: string;
  apiserverEtcdClientCert: string;
  apiserverEtcdClientKey: string;
  frontProxyCaCert: string;
  frontProxyCaKey: string;
  frontProxyClientCert: string;
  frontProxyClientKey: string;
  saKey: string;
  saPub: string;
  etcdCaCert: string;
  etcdCaKey: string;
  etcdServerCert: string;
  etcdServerKey: string;
  etcdPeerCert: string;
  etcdPeerKey: string;
  etcdHealthcheckClientCert: string;
  etcdHealthcheckClientKey: string;
  adminConf: string;
  superAdminConf: string;
  controllerManagerConf: string;
  schedulerConf: string;
  kubeletConf: string;
  /** Every file above, sorted. */
  files: string[];
}

export interface KubeconfigInput {
  server: string;
  caPem: string;
  certPem: string;
  keyPem: string;
  /** User name, e.g. kubernetes-admin; the context is named user@cluster, like kubeadm's. */
  user: string;
  cluster?: string;
}

interface KeyPair {
  certPem: string;
  keyPem: string;
}

interface IssuerFiles {
  cert: string;
  key: string;
}

interface Subject {
  commonName: string;
  organizations?: string[];
}

interface LeafSpec {
  subject: Subject;
  usages: Array<'serverAuth' | 'clientAuth'>;
  sans?: string[];
}

interface PkiLeafSpec extends LeafSpec {
  /** Path under pki/ without the .crt/.key suffix, like `issuer`. */
  name: string;
  issuer: string;
}

const CA_DAYS = 3650;
const LEAF_DAYS = 365;
/** First address of kubeadm's default service CIDR 10.96.0.0/12: the in-cluster `kubernetes` Service. */
const KUBERNETES_SERVICE_IP = '10.96.0.1';

/** The Kubernetes CA comes first: its certificate is the one embedded in the kubeconfigs. */
const CAS = [
  { name: 'ca', commonName: 'kubernetes' },
  { name: 'etcd/ca', commonName: 'etcd-ca' },
  { name: 'front-proxy-ca', commonName: 'front-proxy-ca' },
] as const;

const execFileAsync = promisify(execFile);

export async function createControlPlanePki(opts: PkiOptions): Promise<Pki> {
  if (opts.nodeName.trim() === '') throw new Error('nodeName must not be empty');
  for (const ip of opts.nodeIPs) if (isIP(ip) === 0) throw new Error(`not an IP address: ${ip}`);
  const leaves = leafSpecs(opts);
  const kubeconfigs = kubeconfigSpecs(opts.nodeName);

  const root = path.resolve(opts.root);
  const pkiDir = path.join(root, 'pki');
  const inPki = (rel: string) => path.join(pkiDir, rel);
  const issuerFiles = (name: string): IssuerFiles => ({ cert: inPki(`${name}.crt`), key: inPki(`${name}.key`) });
  await mkdir(inPki('etcd'), { recursive: true });

  const writeServiceAccountKeys = async (): Promise<void> => {
    await writePrivate(inPki('sa.key'), await openssl(['genrsa', '-traditional', '2048']));
    // PKIX "PUBLIC KEY" like kubeadm's sa.pub, which kubeadm also writes 0600.
    await writePrivate(inPki('sa.pub'), await openssl(['rsa', '-in', inPki('sa.key'), '-pubout']));
  };
  const writeCertificates = async (): Promise<void> => {
    // openssl reads the issuing CA from disk, so every CA is written before any leaf is issued.
    const [kubernetesCa] = await Promise.all(
      CAS.map(async ({ name, commonName }) => {
        const pair = await createCa(issuerFiles(name).key, commonName);
        await writePublic(issuerFiles(name).cert, pair.certPem);
        return pair;
      }),
    );
    await Promise.all(
      leaves.map(async ({ name, issuer, ...spec }) => {
        const pair = await issueLeaf(inPki(`${name}.key`), issuerFiles(issuer), spec);
        await writePublic(inPki(`${name}.crt`), pair.certPem);
      }),
    );
    // Kubeconfig client keys only live embedded in the kubeconfig; openssl needs them in a file meanwhile.
    await withScratchDir((scratch) =>
      Promise.all(
        kubeconfigs.map(async ({ file, ...subject }) => {
          const client = await issueLeaf(path.join(scratch, `${file}.key`), issuerFiles('ca'), { subject, usages: ['clientAuth'] });
          const yaml = renderKubeconfig({ server: opts.apiServerUrl, caPem: kubernetesCa.certPem, ...client, user: subject.commonName });
          await writePrivate(path.join(root, file), yaml);
        }),
      ),
    );
  };
  // The RSA service-account key is the slowest to generate; let it overlap all certificate work.
  await Promise.all([writeServiceAccountKeys(), writeCertificates()]);

  const paths = {
    caCert: inPki('ca.crt'),
    caKey: inPki('ca.key'),
    apiserverCert: inPki('apiserver.crt'),
    apiserverKey: inPki('apiserver.key'),
    apiserverKubeletClientCert: inPki('apiserver-kubelet-client.crt'),
    apiserverKubeletClientKey: inPki('apiserver-kubelet-client.key'),
    apiserverEtcdClientCert: inPki('apiserver-etcd-client.crt'),
    apiserverEtcdClientKey: inPki('apiserver-etcd-client.key'),
    frontProxyCaCert: inPki('front-proxy-ca.crt'),
    frontProxyCaKey: inPki('front-proxy-ca.key'),
    frontProxyClientCert: inPki('front-proxy-client.crt'),
    frontProxyClientKey: inPki('front-proxy-client.key'),
    saKey: inPki('sa.key'),
    saPub: inPki('sa.pub'),
    etcdCaCert: inPki('etcd/ca.crt'),
    etcdCaKey: inPki('etcd/ca.key'),
    etcdServerCert: inPki('etcd/server.crt'),
    etcdServerKey: inPki('etcd/server.key'),
    etcdPeerCert: inPki('etcd/peer.crt'),
    etcdPeerKey: inPki('etcd/peer.key'),
    etcdHealthcheckClientCert: inPki('etcd/healthcheck-client.crt'),
    etcdHealthcheckClientKey: inPki('etcd/healthcheck-client.key'),
    adminConf: path.join(root, 'admin.conf'),
    superAdminConf: path.join(root, 'super-admin.conf'),
    controllerManagerConf: path.join(root, 'controller-manager.conf'),
    schedulerConf: path.join(root, 'scheduler.conf'),
    kubeletConf: path.join(root, 'kubelet.conf'),
  };
  return { root, pkiDir, ...paths, files: Object.values(paths).sort() };
}

/**
 * Issues an extra client certificate signed by the Kubernetes CA in pkiDir (used to prove a
 * pre-disaster client cert is still accepted after a restore onto a new node). Returns PEM strings.
 */
export async function issueClientCertificate(
  pkiDir: string,
  commonName: string,
  organizations: string[],
): Promise<{ certPem: string; keyPem: string }> {
  const ca = { cert: path.join(pkiDir, 'ca.crt'), key: path.join(pkiDir, 'ca.key') };
  return withScratchDir((scratch) =>
    issueLeaf(path.join(scratch, 'client.key'), ca, { subject: { commonName, organizations }, usages: ['clientAuth'] }),
  );
}

/** Renders a kubeconfig in the shape kubeadm writes, with all credentials embedded. */
export function renderKubeconfig({ server, caPem, certPem, keyPem, user, cluster = 'kubernetes' }: KubeconfigInput): string {
  const context = `${user}@${cluster}`;
  const b64 = (pem: string) => Buffer.from(pem).toString('base64');
  return stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: cluster, cluster: { server, 'certificate-authority-data': b64(caPem) } }],
      contexts: [{ name: context, context: { cluster, user } }],
      'current-context': context,
      preferences: {},
      users: [{ name: user, user: { 'client-certificate-data': b64(certPem), 'client-key-data': b64(keyPem) } }],
    },
    // Never fold the long base64 scalars.
    { lineWidth: 0 },
  );
}

function leafSpecs({ nodeName, nodeIPs, apiServerUrl }: PkiOptions): PkiLeafSpec[] {
  const nodeIpSans = nodeIPs.map((ip) => `IP:${ip}`);
  const etcdSans = ['DNS:localhost', `DNS:${nodeName}`, 'IP:127.0.0.1', 'IP:::1', ...nodeIpSans];
  const apiserverSans = [
    'DNS:kubernetes',
    'DNS:kubernetes.default',
    'DNS:kubernetes.default.svc',
    'DNS:kubernetes.default.svc.cluster.local',
    'DNS:localhost',
    `DNS:${nodeName}`,
    `IP:${KUBERNETES_SERVICE_IP}`,
    'IP:127.0.0.1',
    ...nodeIpSans,
  ];
  // Clients reach the apiserver through apiServerUrl, so TLS needs its host among the SANs.
  const endpointSan = sanForHost(new URL(apiServerUrl).hostname);
  if (!apiserverSans.includes(endpointSan)) apiserverSans.push(endpointSan);

  return [
    { name: 'apiserver', issuer: 'ca', subject: { commonName: 'kube-apiserver' }, usages: ['serverAuth'], sans: apiserverSans },
    {
      name: 'apiserver-kubelet-client',
      issuer: 'ca',
      subject: { commonName: 'kube-apiserver-kubelet-client', organizations: ['kubeadm:cluster-admins'] },
      usages: ['clientAuth'],
    },
    { name: 'apiserver-etcd-client', issuer: 'etcd/ca', subject: { commonName: 'kube-apiserver-etcd-client' }, usages: ['clientAuth'] },
    { name: 'front-proxy-client', issuer: 'front-proxy-ca', subject: { commonName: 'front-proxy-client' }, usages: ['clientAuth'] },
    { name: 'etcd/server', issuer: 'etcd/ca', subject: { commonName: nodeName }, usages: ['serverAuth', 'clientAuth'], sans: etcdSans },
    { name: 'etcd/peer', issuer: 'etcd/ca', subject: { commonName: nodeName }, usages: ['serverAuth', 'clientAuth'], sans: etcdSans },
    { name: 'etcd/healthcheck-client', issuer: 'etcd/ca', subject: { commonName: 'kube-etcd-healthcheck-client' }, usages: ['clientAuth'] },
  ];
}

/** The kubeconfigs kubeadm writes next to pki/, each with its own client certificate from the Kubernetes CA. */
function kubeconfigSpecs(nodeName: string): Array<{ file: string } & Subject> {
  return [
    { file: 'admin.conf', commonName: 'kubernetes-admin', organizations: ['kubeadm:cluster-admins'] },
    { file: 'super-admin.conf', commonName: 'kubernetes-super-admin', organizations: ['system:masters'] },
    { file: 'controller-manager.conf', commonName: 'system:kube-controller-manager' },
    { file: 'scheduler.conf', commonName: 'system:kube-scheduler' },
    { file: 'kubelet.conf', commonName: `system:node:${nodeName}`, organizations: ['system:nodes'] },
  ];
}

function createCa(keyFile: string, commonName: string): Promise<KeyPair> {
  return newKeyAndCertificate(keyFile, CA_DAYS, { commonName }, [
    'basicConstraints=critical,CA:TRUE',
    'keyUsage=critical,digitalSignature,keyCertSign',
    'subjectKeyIdentifier=hash',
    // kubeadm puts the CA's CN in its SANs as well.
    `subjectAltName=DNS:${commonName}`,
  ]);
}

function issueLeaf(keyFile: string, issuer: IssuerFiles, { subject, usages, sans }: LeafSpec): Promise<KeyPair> {
  const extensions = [
    'basicConstraints=critical,CA:FALSE',
    // keyEncipherment means nothing for EC keys; ECDSA TLS needs only digitalSignature.
    'keyUsage=critical,digitalSignature',
    `extendedKeyUsage=${usages.join(',')}`,
    'authorityKeyIdentifier=keyid',
  ];
  if (sans?.length) extensions.push(`subjectAltName=${sans.join(',')}`);
  return newKeyAndCertificate(keyFile, LEAF_DAYS, subject, extensions, issuer);
}

/**
 * Writes a new P-256 key to keyFile (0600) and issues a certificate for it with one `req -x509`,
 * self-signed without an issuer. The key goes through a file because OpenSSL 3.0's req cannot read
 * a key from stdin, and /dev/stdin cannot be opened on the socket Node gives a child as stdin.
 * `-config /dev/null` keeps the distribution's openssl.cnf from adding its v3_ca extensions
 * (CA:TRUE) to every certificate, so exactly the given extensions are present.
 */
async function newKeyAndCertificate(
  keyFile: string,
  days: number,
  subject: Subject,
  extensions: string[],
  issuer?: IssuerFiles,
): Promise<KeyPair> {
  const keyPem = await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout']);
  await writePrivate(keyFile, keyPem);
  const certPem = await openssl([
    'req',
    '-x509',
    '-new',
    '-config',
    '/dev/null',
    '-sha256',
    '-key',
    keyFile,
    '-days',
    String(days),
    '-subj',
    subjectString(subject),
    ...(issuer ? ['-CA', issuer.cert, '-CAkey', issuer.key] : []),
    ...extensions.flatMap((ext) => ['-addext', ext]),
  ]);
  return { certPem, keyPem };
}

/** Organizations before CN, the order Go's crypto/x509 (and so kubeadm) encodes them. */
function subjectString({ commonName, organizations = [] }: Subject): string {
  const escape = (value: string) => value.replace(/[\\/+]/g, (c) => `\\${c}`);
  return [...organizations.map((o) => `/O=${escape(o)}`), `/CN=${escape(commonName)}`].join('');
}

function sanForHost(host: string): string {
  // URL.hostname keeps the brackets of an IPv6 literal.
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  return isIP(bare) ? `IP:${bare}` : `DNS:${bare}`;
}

async function writePrivate(file: string, data: string): Promise<void> {
  await writeWithMode(file, data, 0o600);
}

async function writePublic(file: string, data: string): Promise<void> {
  await writeWithMode(file, data, 0o644);
}

async function writeWithMode(file: string, data: string, mode: number): Promise<void> {
  await writeFile(file, data, { mode });
  // The mode option only applies when the file is created; rewriting an existing root must still end at `mode`.
  await chmod(file, mode);
}

/** Runs fn with a private (0700) temporary directory that is removed afterwards. */
async function withScratchDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lifeboat-pki-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function openssl(args: string[]): Promise<string> {
  try {
    return (await execFileAsync('openssl', args)).stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`openssl ${args[0]} failed: ${stderr || (error as Error).message}`, { cause: error });
  }
}
