import { readFile } from 'node:fs/promises';
import { KubeApiError, KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { etcdctlArgs } from '../../sandbox/control-plane';
import { minioStorage } from '../support/bed';

describe('kube-apiserver 1.34 on the sandbox node, backed by its etcd', () => {
  let cluster: SandboxCluster;
  let admin: KubeClient;

  beforeAll(async () => {
    cluster = await createSandboxCluster({ name: 'smoke-kube', etcdLine: '3.6', withApiserver: true, storage: minioStorage('smoke-kube') });
    // admin.conf as kubeadm writes it: the kubeadm:cluster-admins group, authorised through RBAC, over the node's address.
    admin = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  it('answers /readyz and lists namespaces', async () => {
    expect(await admin.ready()).toBe(true);
    const namespaces = await admin.list('/api/v1/namespaces');
    expect(namespaces.map((n) => n.metadata.name)).toEqual(expect.arrayContaining(['default', 'kube-system']));
  });

  it('stores a ConfigMap created through the API in etcd under /registry/configmaps', async () => {
    const name = `smoke-${Date.now()}`;
    await admin.create('/api/v1/namespaces/default/configmaps', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name },
      data: { hello: 'world' },
    });
    const keys = await cluster.controlPlane.exec([
      'etcdctl',
      ...etcdctlArgs(),
      'get',
      '--prefix',
      '--keys-only',
      '/registry/configmaps/default/',
    ]);
    expect(keys.split('\n')).toContain(`/registry/configmaps/default/${name}`);
    const back = await admin.get<{ data: Record<string, string> }>(`/api/v1/namespaces/default/configmaps/${name}`);
    expect(back.data).toEqual({ hello: 'world' });
  });

  it('refuses an anonymous client (no client certificate)', async () => {
    const creds = credentialsFromKubeconfig(
      await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'),
      cluster.apiServer,
    );
    const anonymous = new KubeClient({ ...creds, certPem: undefined, keyPem: undefined });
    await expect(anonymous.list('/api/v1/namespaces')).rejects.toBeInstanceOf(KubeApiError);
    await expect(anonymous.list('/api/v1/namespaces')).rejects.toMatchObject({ status: 403 });
  });
});
