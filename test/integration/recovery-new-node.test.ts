import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KubeClient, type KubeObject } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { issueClientCertificate } from '../../sandbox/pki';
import { minioClient, minioStorage } from '../support/bed';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { recover } from '../support/recovery';
import { startTestWorker, type RunningWorker } from '../support/worker';

describe("recovery onto a new node that takes over the dead node's address", () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let admin: KubeClient;
  let alice: { certPem: string; keyPem: string };
  let caPem: Buffer;

  beforeAll(async () => {
    const key = await keyFile();
    const s3 = minioClient();
    await s3.send(new CreateBucketCommand({ Bucket: 'newnode' })).catch(() => undefined);
    s3.destroy();
    cluster = await createSandboxCluster({ name: 'nn', etcdLine: '3.6', withApiserver: true, storage: minioStorage('newnode') });
    admin = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
    caPem = await readFile(cluster.controlPlane.path('/etc/kubernetes/pki/ca.crt'));
    // A client certificate issued before the disaster, as a user's kubeconfig would hold.
    alice = await issueClientCertificate(cluster.controlPlane.path('/etc/kubernetes/pki'), 'alice', ['system:masters']);
    const config = withBackup(cluster, { encryptionKey: 'k1' });
    worker = await startTestWorker([{ ...config, recovery: { ...config.recovery, removeStaleNodes: true } }], {
      encryptionKeys: { k1: { file: key.path } },
    });
    await admin.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'before-backup' } });
    // cp1's kubelet registered its Node (labelled as kubeadm does); a retired control-plane node no longer in the
    // config (with its heartbeat lease) and a worker are created as their kubelets would have registered them.
    const cp = { 'node-role.kubernetes.io/control-plane': '' };
    await labelNode(admin, 'cp1', cp);
    for (const [name, labels] of [
      ['cp-retired', cp],
      ['worker-1', {}],
    ] as const)
      await admin.create('/api/v1/nodes', { metadata: { name, labels } });
    await admin.create('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
      metadata: { name: 'cp-retired' },
      spec: { holderIdentity: 'cp-retired' },
    });
    await runBackup(worker.client, worker.taskQueue, 'nn');
    await admin.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'after-backup' } });
  });
  afterAll(async () => {
    await worker?.stop();
    await cluster?.destroy();
  });

  it('rebuilds the control plane from the backup with the original CA and data, and the same Node comes back Ready', async () => {
    const dead = cluster.controlPlane;
    await dead.destroy({ keepAddress: true }); // the machine is gone, disks and all; its address waits for the replacement
    expect(await admin.ready()).toBe(false);
    const replacement = await cluster.addNode('cp1-new', { subnet: dead.subnet });
    expect(replacement.ip).toBe(dead.ip);
    expect(replacement.hostKey).not.toBe(dead.hostKey);
    // A freshly provisioned machine: its kubelet is installed but has no configuration yet (it exits and is restarted).
    expect(existsSync(replacement.path('/var/lib/kubelet/config.yaml'))).toBe(false);
    expect((await replacement.exec(['uname', '-n'])).trim()).toBe('cp1-new');

    const result = await recover(worker.client, worker.taskQueue, {
      cluster: 'nn',
      mode: 'new-node',
      target: replacement.ip,
      targetHostKey: replacement.hostKey,
      approval: 'auto',
      controlPlaneTimeoutSeconds: 120,
    });
    expect(result.outcome).toBe('restored');
    expect(result.plan.mode).toBe('new-node');

    const names = (await admin.list('/api/v1/namespaces/default/configmaps')).map((c) => c.metadata.name);
    expect(names).toContain('before-backup');
    expect(names).not.toContain('after-backup');
    // The old identity came back: a certificate issued by the original CA before the disaster is accepted.
    const asAlice = new KubeClient({
      server: cluster.apiServer!,
      caPem,
      certPem: Buffer.from(alice.certPem),
      keyPem: Buffer.from(alice.keyPem),
    });
    expect((await asAlice.list('/api/v1/namespaces')).map((n) => n.metadata.name)).toContain('default');
    expect(await readFile(replacement.path('/etc/kubernetes/pki/ca.crt'))).toEqual(caPem);
    expect(await readFile(join(replacement.path('/etc/kubernetes/manifests'), 'etcd.yaml'), 'utf8')).toContain(`--name=cp1`);
    // removeStaleNodes: the retired control-plane node and its lease are gone; the configured node and the worker stay.
    expect(result.verification?.staleNodesRemoved).toEqual(['cp-retired']);
    expect((await admin.list('/api/v1/nodes')).map((n) => n.metadata.name).sort()).toEqual(['cp1', 'worker-1']);
    expect((await admin.list('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases')).map((l) => l.metadata.name)).not.toContain(
      'cp-retired',
    );

    // The machine's kubelet got the old node's identity and came back as Node cp1 (its hostname is cp1-new), Ready.
    expect(result.verification?.controlPlaneNode).toMatchObject({ node: 'cp1', ready: true });
    const kubeletStep = await readFile(replacement.path('/var/lib/kubelet/kubeadm-flags.env'), 'utf8');
    expect(kubeletStep).toContain('--hostname-override=cp1');
    // (an absolute symlink, as the kubelet makes it: read on the node)
    expect(await replacement.exec(['cat', '/var/lib/kubelet/pki/kubelet-client-current.pem'])).toContain('BEGIN CERTIFICATE');
    const node = await admin.get<NodeWithStatus>('/api/v1/nodes/cp1');
    expect(node.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(node.metadata.labels?.['node-role.kubernetes.io/control-plane']).toBe('');
    expect((await admin.list('/api/v1/nodes')).map((n) => n.metadata.name)).not.toContain('cp1-new');
    // ... and it is that kubelet that runs the control plane's static pods now (their mirror pods name the node).
    const mirror = await admin.get<{ spec: { nodeName: string } }>('/api/v1/namespaces/kube-system/pods/kube-apiserver-cp1');
    expect(mirror.spec.nodeName).toBe('cp1');
  });
});

type NodeWithStatus = KubeObject & { status: { conditions: { type: string; status: string }[] } };

/** Adds labels to a Node its kubelet registered (waits for it; retries while the kubelet updates it too). */
async function labelNode(api: KubeClient, name: string, labels: Record<string, string>): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const got = await api.raw('GET', `/api/v1/nodes/${name}`);
    if (got.status === 200) {
      const node = JSON.parse(got.text) as KubeObject;
      node.metadata.labels = { ...node.metadata.labels, ...labels };
      const put = await api.raw('PUT', `/api/v1/nodes/${name}`, node);
      if (put.status === 200) return;
      if (put.status !== 409) throw new Error(`labelling node ${name}: ${put.status} ${put.text}`);
    }
    if (Date.now() > deadline) throw new Error(`node ${name} was not registered by its kubelet within 60 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
