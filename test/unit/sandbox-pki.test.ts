import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { createControlPlanePki, issueClientCertificate, Pki } from '../../sandbox/pki';

const execFileAsync = promisify(execFile);
const openssl = async (...args: string[]): Promise<string> => (await execFileAsync('openssl', args)).stdout;
const certText = (file: string) => openssl('x509', '-noout', '-text', '-in', file);
const verify = (caFile: string, file: string) => openssl('verify', '-CAfile', caFile, file);

const NODE_NAME = 'cp-1';
const NODE_IPS = ['172.20.0.5', 'fd00::5'];
const API_SERVER_URL = 'https://cp.lifeboat.test:6443';

let work: string;
let pki: Pki;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'lifeboat-pki-'));
  pki = await createControlPlanePki({
    root: path.join(work, 'kubernetes'),
    nodeName: NODE_NAME,
    nodeIPs: NODE_IPS,
    apiServerUrl: API_SERVER_URL,
  });
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

/** The certificate's public key and the private key's public half must be the same key. */
async function expectKeyMatchesCert(keyFile: string, certFile: string): Promise<void> {
  expect(await openssl('pkey', '-pubout', '-in', keyFile)).toBe(await openssl('x509', '-noout', '-pubkey', '-in', certFile));
}

test('lays out exactly the files kubeadm writes, keys and kubeconfigs 0600', async () => {
  const pairs = [
    'ca',
    'apiserver',
    'apiserver-kubelet-client',
    'apiserver-etcd-client',
    'front-proxy-ca',
    'front-proxy-client',
    'etcd/ca',
    'etcd/server',
    'etcd/peer',
    'etcd/healthcheck-client',
  ].flatMap((name) => [`pki/${name}.crt`, `pki/${name}.key`]);
  const expected = [
    ...pairs,
    'pki/sa.key',
    'pki/sa.pub',
    'admin.conf',
    'super-admin.conf',
    'controller-manager.conf',
    'scheduler.conf',
    'kubelet.conf',
  ].sort();

  expect(await listFiles(pki.root)).toEqual(expected);
  expect(pki.files).toEqual(expected.map((rel) => path.join(pki.root, rel)).sort());
  for (const file of pki.files) {
    const mode = (await stat(file)).mode & 0o777;
    expect({ file, mode }).toEqual({ file, mode: file.endsWith('.crt') ? 0o644 : 0o600 });
  }
});

test('chains verify against the right CA only', async () => {
  const byCa: Array<[string, string[]]> = [
    [pki.caCert, [pki.caCert, pki.apiserverCert, pki.apiserverKubeletClientCert]],
    [pki.etcdCaCert, [pki.etcdCaCert, pki.etcdServerCert, pki.etcdPeerCert, pki.etcdHealthcheckClientCert, pki.apiserverEtcdClientCert]],
    [pki.frontProxyCaCert, [pki.frontProxyCaCert, pki.frontProxyClientCert]],
  ];
  for (const [ca, certs] of byCa) {
    for (const cert of certs) expect(await verify(ca, cert)).toBe(`${cert}: OK\n`);
  }
  await expect(verify(pki.caCert, pki.apiserverEtcdClientCert)).rejects.toThrow();
  await expect(verify(pki.etcdCaCert, pki.apiserverCert)).rejects.toThrow();

  await expectKeyMatchesCert(pki.caKey, pki.caCert);
  await expectKeyMatchesCert(pki.apiserverKey, pki.apiserverCert);
  await expectKeyMatchesCert(pki.etcdServerKey, pki.etcdServerCert);
});

test('CAs are 10-year CA:TRUE certificates that may sign certificates', async () => {
  for (const ca of [pki.caCert, pki.etcdCaCert, pki.frontProxyCaCert]) {
    const text = await certText(ca);
    expect(text).toMatch(/CA:TRUE/);
    expect(text).toMatch(/Certificate Sign/);
    const days = await validityDays(ca);
    expect(days).toBeGreaterThanOrEqual(3649);
    expect(days).toBeLessThanOrEqual(3651);
  }
  expect(await certText(pki.caCert)).toMatch(/Subject: CN\s*=\s*kubernetes\n/);
  expect(await certText(pki.etcdCaCert)).toMatch(/Subject: CN\s*=\s*etcd-ca\n/);
});

test('apiserver serving certificate carries kubeadm SANs, node IPs and the endpoint host', async () => {
  const text = await certText(pki.apiserverCert);
  expect(text).toMatch(/Subject: CN\s*=\s*kube-apiserver\n/);
  expect(text).toMatch(/CA:FALSE/);
  expect(text).toMatch(/TLS Web Server Authentication/);
  const sans = subjectAltNames(text);
  for (const dns of [
    'kubernetes',
    'kubernetes.default',
    'kubernetes.default.svc',
    'kubernetes.default.svc.cluster.local',
    'localhost',
    NODE_NAME,
    'cp.lifeboat.test',
  ]) {
    expect(sans).toContain(`DNS:${dns}`);
  }
  for (const ip of ['10.96.0.1', '127.0.0.1', '172.20.0.5', 'FD00:0:0:0:0:0:0:5']) expect(sans).toContain(`IP Address:${ip}`);
  const days = await validityDays(pki.apiserverCert);
  expect(days).toBeGreaterThanOrEqual(364);
  expect(days).toBeLessThanOrEqual(366);
});

test('etcd server and peer certificates serve and authenticate as the node', async () => {
  for (const cert of [pki.etcdServerCert, pki.etcdPeerCert]) {
    const text = await certText(cert);
    expect(text).toMatch(new RegExp(`Subject: CN\\s*=\\s*${NODE_NAME}\\n`));
    expect(text).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    const sans = subjectAltNames(text);
    for (const san of [
      'DNS:localhost',
      `DNS:${NODE_NAME}`,
      'IP Address:127.0.0.1',
      'IP Address:0:0:0:0:0:0:0:1',
      'IP Address:172.20.0.5',
    ]) {
      expect(sans).toContain(san);
    }
  }
  const healthcheck = await certText(pki.etcdHealthcheckClientCert);
  expect(healthcheck).toMatch(/Subject: CN\s*=\s*kube-etcd-healthcheck-client\n/);
  expect(healthcheck).toMatch(/TLS Web Client Authentication/);
  expect(healthcheck).not.toMatch(/TLS Web Server Authentication/);
});

test('sa.pub is the public half of sa.key', async () => {
  expect(await readFile(pki.saKey, 'utf8')).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
  expect(await openssl('pkey', '-pubout', '-in', pki.saKey)).toBe(await readFile(pki.saPub, 'utf8'));
});

test('kubeconfigs embed the CA and a client identity signed by it', async () => {
  const identities: Array<[string, string]> = [
    [pki.adminConf, 'O\\s*=\\s*kubeadm:cluster-admins, CN\\s*=\\s*kubernetes-admin'],
    [pki.superAdminConf, 'O\\s*=\\s*system:masters, CN\\s*=\\s*kubernetes-super-admin'],
    [pki.controllerManagerConf, 'CN\\s*=\\s*system:kube-controller-manager'],
    [pki.schedulerConf, 'CN\\s*=\\s*system:kube-scheduler'],
    [pki.kubeletConf, `O\\s*=\\s*system:nodes, CN\\s*=\\s*system:node:${NODE_NAME}`],
  ];
  const caPem = await readFile(pki.caCert, 'utf8');
  for (const [conf, subject] of identities) {
    const config = parse(await readFile(conf, 'utf8'));
    const [{ name: userName, user }] = config.users;
    const [{ cluster }] = config.clusters;
    expect(config['current-context']).toBe(`${userName}@kubernetes`);
    expect(cluster.server).toBe(API_SERVER_URL);
    expect(Buffer.from(cluster['certificate-authority-data'], 'base64').toString()).toBe(caPem);

    const certFile = path.join(work, `${path.basename(conf)}.crt`);
    const keyFile = path.join(work, `${path.basename(conf)}.key`);
    await writeFile(certFile, Buffer.from(user['client-certificate-data'], 'base64'));
    await writeFile(keyFile, Buffer.from(user['client-key-data'], 'base64'), { mode: 0o600 });
    expect(await verify(pki.caCert, certFile)).toBe(`${certFile}: OK\n`);
    await expectKeyMatchesCert(keyFile, certFile);
    const text = await certText(certFile);
    expect(text).toMatch(new RegExp(`Subject: ${subject}\\n`));
    expect(text).toMatch(/TLS Web Client Authentication/);
  }
});

test('issueClientCertificate signs an extra client identity with the Kubernetes CA', async () => {
  const { certPem, keyPem } = await issueClientCertificate(pki.pkiDir, 'pre-disaster-user', ['team-a', 'team-b']);
  const certFile = path.join(work, 'extra.crt');
  const keyFile = path.join(work, 'extra.key');
  await writeFile(certFile, certPem);
  await writeFile(keyFile, keyPem, { mode: 0o600 });
  expect(await verify(pki.caCert, certFile)).toBe(`${certFile}: OK\n`);
  await expectKeyMatchesCert(keyFile, certFile);
  expect(await certText(certFile)).toMatch(/Subject: O\s*=\s*team-a, O\s*=\s*team-b, CN\s*=\s*pre-disaster-user\n/);
});

function subjectAltNames(text: string): string[] {
  const match = /X509v3 Subject Alternative Name:.*\n\s*(.*)\n/.exec(text);
  if (!match) throw new Error('certificate has no subjectAltName');
  return match[1].split(', ');
}

async function validityDays(certFile: string): Promise<number> {
  const out = await openssl('x509', '-noout', '-startdate', '-enddate', '-in', certFile);
  const [start, end] = ['notBefore', 'notAfter'].map((field) => Date.parse(new RegExp(`${field}=(.*)`).exec(out)![1]));
  return (end - start) / 86_400_000;
}
