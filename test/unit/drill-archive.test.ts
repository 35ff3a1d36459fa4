import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { clusterSchema } from '../../src/config/schema';
import { checkArchive } from '../../src/drill/archive';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { kubeApiserverManifest, etcdManifest, kubeSchedulerManifest, kubeControllerManagerManifest } from '../../sandbox/manifests';
import { createControlPlanePki, renderKubeconfig } from '../../sandbox/pki';
import { kubeadmFlagsEnv, kubeletConfig } from '../../sandbox/runtime';

const run = promisify(execFile);
const cluster = clusterSchema.parse({
  name: 'prod',
  nodes: [{ name: 'cp1', host: '10.0.0.10', hostKey: 'ssh-ed25519 AAAA' }],
  storage: { bucket: 'backups' },
});
const DAY = 86_400_000;
const STAMP = 'kubelet-client-2026-12-01-10-00-00.pem';

/**
 * A control-plane archive as a backup of a kubeadm node unpacks it (pki/, manifests/, the kubeconfigs, kubelet/), with
 * the sandbox's real PKI; the kubelet's client certificate is the rotatable kubelet/pki/kubelet-client-current.pem,
 * a link to the dated file by its node path, that kubelet.conf names (kubeadm's kubelet-finalize).
 */
let base: string;
let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'lifeboat-drill-archive-'));
  base = join(work, 'base');
  await createControlPlanePki({ root: base, nodeName: 'cp1', nodeIPs: ['10.0.0.10'], apiServerUrl: 'https://10.0.0.10:6443' });
  const o = {
    nodeName: 'cp1',
    ip: '10.0.0.10',
    etcdImage: 'registry.k8s.io/etcd:3.6.4-0',
    apiserverImage: 'registry.k8s.io/kube-apiserver:v1.34.0',
    schedulerImage: 'registry.k8s.io/kube-scheduler:v1.34.0',
    controllerManagerImage: 'registry.k8s.io/kube-controller-manager:v1.34.0',
    etcdFastFlags: true,
  };
  await mkdir(join(base, 'manifests'));
  await writeFile(join(base, 'manifests/etcd.yaml'), etcdManifest(o));
  await writeFile(join(base, 'manifests/kube-apiserver.yaml'), kubeApiserverManifest(o));
  await writeFile(join(base, 'manifests/kube-scheduler.yaml'), kubeSchedulerManifest(o));
  await writeFile(join(base, 'manifests/kube-controller-manager.yaml'), kubeControllerManagerManifest(o));
  await mkdir(join(base, 'kubelet/pki'), { recursive: true });
  await writeFile(join(base, 'kubelet/config.yaml'), kubeletConfig());
  await writeFile(join(base, 'kubelet/kubeadm-flags.env'), kubeadmFlagsEnv());
  const creds = credentialsFromKubeconfig(await readFile(join(base, 'kubelet.conf'), 'utf8'));
  await writeFile(join(base, 'kubelet/pki', STAMP), Buffer.concat([creds.certPem!, creds.keyPem!]));
  await symlink(`/var/lib/kubelet/pki/${STAMP}`, join(base, 'kubelet/pki/kubelet-client-current.pem'));
  await writeFile(join(base, 'kubelet.conf'), kubeletConf('/var/lib/kubelet/pki/kubelet-client-current.pem', creds.caPem));
});
afterAll(() => rm(work, { recursive: true, force: true }));

function kubeletConf(pemPath: string, caPem: Buffer): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'kubernetes', cluster: { server: 'https://10.0.0.10:6443', 'certificate-authority-data': caPem.toString('base64') } },
    ],
    contexts: [{ name: 'system:node:cp1@kubernetes', context: { cluster: 'kubernetes', user: 'system:node:cp1' } }],
    'current-context': 'system:node:cp1@kubernetes',
    users: [{ name: 'system:node:cp1', user: { 'client-certificate': pemPath, 'client-key': pemPath } }],
  });
}

let n = 0;
/** A fresh copy of the archive for one test to change (links kept as links). */
async function archive(): Promise<string> {
  const dir = join(work, `a${++n}`);
  await cp(base, dir, { recursive: true, verbatimSymlinks: true });
  return dir;
}

/** A client certificate from the archive's CA (or another CA) valid for `days`, as openssl issues them. */
async function clientCertificate(
  dir: string,
  cn: string,
  days: number,
  ca = join(dir, 'pki/ca'),
): Promise<{ certPem: string; keyPem: string }> {
  const key = join(dir, `${cn.replace(/\W/g, '_')}.key`);
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  const { stdout } = await run('openssl', [
    'req', '-x509', '-new', '-config', '/dev/null', '-key', key, '-days', String(days), '-subj', `/CN=${cn}`,
    '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-addext', 'extendedKeyUsage=clientAuth',
  ]); // prettier-ignore
  const keyPem = await readFile(key, 'utf8');
  await unlink(key);
  return { certPem: stdout, keyPem };
}

async function replaceKubeconfigCredentials(dir: string, file: string, user: string, c: { certPem: string; keyPem: string }) {
  const caPem = (await readFile(join(dir, 'pki/ca.crt'), 'utf8')).toString();
  await writeFile(join(dir, file), renderKubeconfig({ server: 'https://10.0.0.10:6443', caPem, ...c, user }));
}

describe("a drill checks every certificate the restored control plane would use, from the backup's archive", () => {
  it("a kubeadm archive passes: pki/*.crt, each kubeconfig's client certificate by user, and the kubelet's identity behind its link", async () => {
    const r = await checkArchive(cluster, await archive());
    expect(r.problems).toEqual([]);
    const from = (file: string) => r.certificates.filter((c) => c.file === file).map(({ kubeconfig, user }) => ({ kubeconfig, user }));
    expect(from('pki/apiserver.crt')).toEqual([{ kubeconfig: undefined, user: undefined }]);
    expect(from('admin.conf')).toEqual([{ kubeconfig: 'admin.conf', user: 'kubernetes-admin' }]);
    expect(from('super-admin.conf')).toEqual([{ kubeconfig: 'super-admin.conf', user: 'kubernetes-super-admin' }]);
    expect(from('controller-manager.conf')).toEqual([{ kubeconfig: 'controller-manager.conf', user: 'system:kube-controller-manager' }]);
    expect(from('scheduler.conf')).toEqual([{ kubeconfig: 'scheduler.conf', user: 'system:kube-scheduler' }]);
    expect(from('kubelet/pki/kubelet-client-current.pem')).toEqual([{ kubeconfig: 'kubelet.conf', user: 'system:node:cp1' }]);
    expect(r.certificates.every((c) => c.daysLeft >= 364 && c.daysLeft <= 3650)).toBe(true);
    expect(r.checks).toContain('kubelet.conf: a new node takes over the kubelet identity of Node "cp1"');
    expect(r.checks.join('\n')).toMatch(/certificates checked: 15 \(5 client certificates of 5 kubeconfigs\); the soonest to expire is /);
  });

  it('an expired client certificate in a kubeconfig, or the kubelet certificate behind its link, fails the drill, named with its user', async () => {
    const dir = await archive();
    await replaceKubeconfigCredentials(dir, 'admin.conf', 'kubernetes-admin', await clientCertificate(dir, 'kubernetes-admin', 1));
    const kubelet = await clientCertificate(dir, 'system:node:cp1', 1);
    await writeFile(join(dir, 'kubelet/pki', STAMP), kubelet.certPem + kubelet.keyPem);
    const now = new Date(Date.now() + 1.5 * DAY);
    const r = await checkArchive(cluster, dir, now);
    expect(r.problems).toEqual([
      expect.stringMatching(/^certificate admin\.conf \(user kubernetes-admin\) expired on \d{4}-/),
      expect.stringMatching(/^certificate kubelet\/pki\/kubelet-client-current\.pem \(kubelet\.conf, user system:node:cp1\) expired on /),
    ]);
    const admin = r.certificates.find((c) => c.file === 'admin.conf')!;
    expect(admin.daysLeft).toBe(-1);
    // The day before, they are reported with what is left, as pki/*.crt are.
    const before = await checkArchive(cluster, dir, new Date(Date.now() + 0.5 * DAY));
    expect(before.problems).toEqual([]);
    expect(before.certificates.find((c) => c.file === 'admin.conf')!.daysLeft).toBe(0);
  });

  it('a client certificate another CA signed, or with a key that is not its own, fails the drill', async () => {
    const dir = await archive();
    const other = join(dir, 'other-ca');
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${other}.key`, '-out', `${other}.crt`, '-days', '30', '-subj', '/CN=other', '-config', '/dev/null', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']); // prettier-ignore
    await replaceKubeconfigCredentials(
      dir,
      'scheduler.conf',
      'system:kube-scheduler',
      await clientCertificate(dir, 'system:kube-scheduler', 30, other),
    );
    const good = await clientCertificate(dir, 'system:kube-controller-manager', 30);
    const stranger = await clientCertificate(dir, 'stranger', 30);
    await replaceKubeconfigCredentials(dir, 'controller-manager.conf', 'system:kube-controller-manager', {
      ...good,
      keyPem: stranger.keyPem,
    });
    const r = await checkArchive(cluster, dir);
    expect(r.problems).toEqual([
      'controller-manager.conf (user system:kube-controller-manager): its client key does not belong to its client certificate controller-manager.conf (user system:kube-controller-manager)',
      "certificate scheduler.conf (user system:kube-scheduler) is not signed by the API server's client CA (pki/ca.crt): a control plane rebuilt from this backup would refuse it",
    ]);
  });

  it("the kubelet's certificate file missing from the archive, or its link leading out of it, fails the drill: a new node could not take over its identity", async () => {
    const dir = await archive();
    await unlink(join(dir, 'kubelet/pki', STAMP));
    const r = await checkArchive(cluster, dir);
    expect(r.problems).toEqual([
      'kubelet.conf (user system:node:cp1) names its client certificate /var/lib/kubelet/pki/kubelet-client-current.pem, which the control-plane archive does not hold: a control plane rebuilt from this backup cannot use it',
    ]);
    // A link to a file of the drill host itself is never read through (here: this test's own copy of the certificate).
    await unlink(join(dir, 'kubelet/pki/kubelet-client-current.pem'));
    await symlink(join(base, 'kubelet/pki', STAMP), join(dir, 'kubelet/pki/kubelet-client-current.pem'));
    expect((await checkArchive(cluster, dir)).problems).toEqual(r.problems);
    // Nor is a folder of the archive that is a link out of it.
    await rm(join(dir, 'kubelet/pki'), { recursive: true });
    await symlink(join(base, 'kubelet/pki'), join(dir, 'kubelet/pki'));
    expect((await checkArchive(cluster, dir)).problems).toEqual(r.problems);
    // A kubelet.conf that names no certificate at all: the identity is unusable.
    const conf = parse(await readFile(join(dir, 'kubelet.conf'), 'utf8')) as { users: { user: Record<string, string> }[] };
    conf.users[0].user = { token: 'x' };
    await writeFile(join(dir, 'kubelet.conf'), stringify(conf));
    expect((await checkArchive(cluster, dir)).problems).toEqual([
      "kubelet.conf: a new node cannot take over the kubelet's identity: kubelet.conf names no client certificate (client-certificate-data or client-certificate)",
    ]);
  });

  it('a file flag given twice: both files are checked, the missing one is named, and the drill says which one the API server uses', async () => {
    const dir = await archive();
    const manifest = join(dir, 'manifests/kube-apiserver.yaml');
    const pod = parse(await readFile(manifest, 'utf8')) as { spec: { containers: { command: string[] }[] } };
    await writeFile(join(dir, 'pki/enc-new.yaml'), 'kind: EncryptionConfiguration\n');
    pod.spec.containers[0].command.push(
      '--encryption-provider-config=/etc/kubernetes/pki/enc-old.yaml',
      '--encryption-provider-config=/etc/kubernetes/pki/enc-new.yaml',
      '--tls-cert-file=/etc/kubernetes/pki/front-proxy-client.crt',
    );
    await writeFile(manifest, stringify(pod));
    const r = await checkArchive(cluster, dir);
    expect(r.problems).toEqual([
      'manifests/kube-apiserver.yaml references a file the control-plane archive does not hold: /etc/kubernetes/pki/enc-old.yaml (--encryption-provider-config); a node rebuilt from this backup cannot start it',
    ]);
    expect(r.checks).toContain(
      'manifests/kube-apiserver.yaml gives --encryption-provider-config 2 times (/etc/kubernetes/pki/enc-old.yaml, /etc/kubernetes/pki/enc-new.yaml): all archived and checked; the component uses the last, /etc/kubernetes/pki/enc-new.yaml',
    );
    expect(r.checks.join('\n')).toMatch(
      /gives --tls-cert-file 2 times .*the component uses the last, \/etc\/kubernetes\/pki\/front-proxy-client\.crt/,
    );
    // The throwaway API server gets the file the real one uses.
    expect(r.apiserverFiles['encryption-provider-config']).toBe('pki/enc-new.yaml');
    expect(r.apiserverFlags['encryption-provider-config']).toBe('/etc/kubernetes/pki/enc-new.yaml');
  });

  it('a kubeconfig that does not parse is named without the lines around the fault (they can hold its client key)', async () => {
    const dir = await archive();
    const broken = 'users:\n- name: kubernetes-admin\n  user:\n    client-key-data: TOPSECRETKEY: x\n';
    await writeFile(join(dir, 'admin.conf'), broken);
    await writeFile(join(dir, 'kubelet.conf'), broken);
    const r = await checkArchive(cluster, dir);
    expect(r.problems).toEqual([
      expect.stringMatching(/^admin\.conf does not parse: .* at line 4, column \d+:$/),
      expect.stringMatching(/^kubelet\.conf does not parse: /),
      expect.stringMatching(/^kubelet\.conf: a new node cannot take over the kubelet's identity: .* at line 4, column \d+:$/),
    ]);
    expect(r.problems.join('\n')).not.toContain('TOPSECRETKEY');
  });
});
