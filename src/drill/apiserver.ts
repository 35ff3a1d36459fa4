import type { Revision } from '../etcd/revision';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { minorOf } from '../etcd/static-pod';
import { KubeApiError, KubeClient, type KubeList, type KubeObject } from '../kube/client';
import { credentialsFromKubeconfig } from '../kube/kubeconfig';
import type { ArchiveCheck } from './archive';
import { DrillProblem, type DrillToolPaths } from './etcd';
import type { DrillHost } from './host';

/** The last lines of a throwaway server's log on the drill host, for a problem message. */
async function logTail(host: DrillHost, file: string): Promise<string> {
  const text = await host.readText(file);
  return text.trim().split('\n').slice(-3).join(' | ').slice(-600);
}

/** etcd's /registry/<resource> names -> the API's collection paths, for the resources a drill reads through the API. */
export const API_RESOURCES: Record<string, string> = {
  namespaces: '/api/v1/namespaces',
  configmaps: '/api/v1/configmaps',
  secrets: '/api/v1/secrets',
  serviceaccounts: '/api/v1/serviceaccounts',
  minions: '/api/v1/nodes',
  pods: '/api/v1/pods',
  persistentvolumes: '/api/v1/persistentvolumes',
  persistentvolumeclaims: '/api/v1/persistentvolumeclaims',
  deployments: '/apis/apps/v1/deployments',
  replicasets: '/apis/apps/v1/replicasets',
  statefulsets: '/apis/apps/v1/statefulsets',
  daemonsets: '/apis/apps/v1/daemonsets',
  jobs: '/apis/batch/v1/jobs',
  cronjobs: '/apis/batch/v1/cronjobs',
  clusterroles: '/apis/rbac.authorization.k8s.io/v1/clusterroles',
  clusterrolebindings: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
  roles: '/apis/rbac.authorization.k8s.io/v1/roles',
  rolebindings: '/apis/rbac.authorization.k8s.io/v1/rolebindings',
  priorityclasses: '/apis/scheduling.k8s.io/v1/priorityclasses',
};

/** The kube-apiserver binary on the drill host for a backup's Kubernetes version, or undefined (the drill then counts in etcd only). */
export async function apiserverFor(
  host: DrillHost,
  paths: DrillToolPaths,
  kubernetesVersion: string | undefined,
): Promise<string | undefined> {
  const minor = minorOf(kubernetesVersion);
  const bin = minor ? paths.kubeApiserver[minor] : undefined;
  if (!bin) return undefined;
  return (await host.present(bin)) ? bin : undefined;
}

/**
 * A kube-apiserver on loopback against the throwaway etcd, with the backup's own PKI (its CA authenticates the
 * backup's admin.conf; its serving certificate is checked against that CA) and its encryption config when the
 * manifest has one: a backup whose Secrets cannot be decrypted fails here, as it would on a rebuilt node. It runs on
 * the drill host with the archive unpacked there (`cpDir`); the worker reads it through `host.reach`, authenticated by
 * the admin.conf of its own copy of the archive (`localCpDir`: the same folder when the worker is the drill host).
 */
export async function startApiserver(
  host: DrillHost,
  bin: string,
  scratch: string,
  cpDir: string,
  localCpDir: string,
  pkiName: string,
  archive: ArchiveCheck,
  etcdUrl: string,
  timeoutMs: number,
): Promise<{ pid: number; client: KubeClient; notReady?: string }> {
  const port = await host.freePort();
  const f = (rel: string) => `${cpDir}/${rel}`;
  const local = (rel: string) => `${localCpDir}/${rel}`;
  const pki = (name: string) => f(`${pkiName}/${name}`);
  const encryption = archive.apiserverFiles['encryption-provider-config'];
  const args = [
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${port}`,
    `--etcd-servers=${etcdUrl}`,
    `--cert-dir=${scratch}/apiserver-certs`,
    `--client-ca-file=${pki('ca.crt')}`,
    `--tls-cert-file=${pki('apiserver.crt')}`,
    `--tls-private-key-file=${pki('apiserver.key')}`,
    `--service-account-key-file=${pki('sa.pub')}`,
    `--service-account-signing-key-file=${pki('sa.key')}`,
    `--service-account-issuer=${archive.apiserverFlags['service-account-issuer'] ?? 'https://kubernetes.default.svc.cluster.local'}`,
    `--service-cluster-ip-range=${archive.apiserverFlags['service-cluster-ip-range'] ?? '10.96.0.0/12'}`,
    // Reads only: nobody but the drill talks to it, and it should write as little as it can into the restored data.
    '--authorization-mode=AlwaysAllow',
    '--anonymous-auth=false',
    '--endpoint-reconciler-type=none',
    '--enable-priority-and-fairness=false',
    '--profiling=false',
    ...(encryption ? [`--encryption-provider-config=${f(encryption)}`] : []),
  ];
  const pid = await host.start(scratch, 'kube-apiserver', bin, args);
  const kubeconfig = await readFile(local('admin.conf'), 'utf8').catch(() => {
    throw new DrillProblem('the control-plane archive has no admin.conf to read the restored API with');
  });
  const creds = credentialsFromKubeconfig(kubeconfig, `https://${await host.reach(port)}`);
  // The backup's serving certificate names the cluster's hosts, not this loopback port: verify it by a name it carries.
  const sans = new X509Certificate(await readFile(local(`${pkiName}/apiserver.crt`))).subjectAltName ?? '';
  const dns = /DNS:([^,\s]+)/.exec(sans)?.[1];
  const client = new KubeClient({ ...creds, serverName: dns ?? 'kubernetes' }, 30_000);
  const deadline = Date.now() + timeoutMs;
  let notReady: string | undefined;
  while (!(await client.ready())) {
    if (!(await host.running(scratch, pid)))
      throw new DrillProblem(
        `the throwaway kube-apiserver exited: ${(await logTail(host, `${scratch}/kube-apiserver.log`)) || 'no output'}`,
      );
    if (Date.now() > deadline) {
      // Serving but not ready: which checks fail is the finding; what it can still serve is read below.
      const verbose = await client.raw('GET', '/readyz?verbose').catch(() => undefined);
      if (!verbose)
        throw new DrillProblem(
          `the throwaway kube-apiserver did not answer within ${Math.round(timeoutMs / 1000)} s: ${(await logTail(host, `${scratch}/kube-apiserver.log`)) || 'no output'}`,
        );
      const failing = verbose.text
        .split('\n')
        .filter((l) => l.startsWith('[-]'))
        .map((l) => l.slice(3).split(' ')[0]);
      notReady = `the throwaway kube-apiserver is not ready after ${Math.round(timeoutMs / 1000)} s (failing: ${failing.join(', ') || verbose.text.slice(0, 200)})`;
      break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { pid, client, notReady };
}

/** Lists a collection at exactly `revision` (what the backup held), following continue tokens. */
async function listAt(client: KubeClient, path: string, revision: Revision): Promise<KubeObject[]> {
  const items: KubeObject[] = [];
  let next: string | undefined;
  do {
    const query = next
      ? `limit=500&continue=${encodeURIComponent(next)}`
      : `limit=500&resourceVersion=${revision}&resourceVersionMatch=Exact`;
    const page = await client.json<KubeList>('GET', `${path}?${query}`);
    items.push(...page.items);
    next = page.metadata.continue || undefined;
  } while (next);
  return items;
}

function objectPath(collection: string, o: KubeObject): string {
  const name = encodeURIComponent(o.metadata.name);
  if (!o.metadata.namespace) return `${collection}/${name}`;
  const [prefix, resource] = [collection.slice(0, collection.lastIndexOf('/')), collection.slice(collection.lastIndexOf('/') + 1)];
  return `${prefix}/namespaces/${encodeURIComponent(o.metadata.namespace)}/${resource}/${name}`;
}

export interface ApiRead {
  counts: Record<string, number>;
  sampled: Record<string, number>;
  problems: string[];
}

/** Counts the resources the backup recorded through the API at the backup's revision, and reads a sample of each. */
export async function readThroughApi(
  client: KubeClient,
  expected: Record<string, number>,
  revision: Revision,
  sampleSize: number,
): Promise<ApiRead> {
  const counts: Record<string, number> = {};
  const sampled: Record<string, number> = {};
  const problems: string[] = [];
  for (const [resource, path] of Object.entries(API_RESOURCES)) {
    if (!(resource in expected)) continue;
    let items: KubeObject[];
    try {
      items = await listAt(client, path, revision);
    } catch (err) {
      const detail = err instanceof KubeApiError ? `HTTP ${err.status}: ${err.body.slice(0, 200)}` : (err as Error).message;
      problems.push(
        `${resource}: the restored API cannot list them (${detail})${resource === 'secrets' ? '; Secrets encrypted at rest need the --encryption-provider-config file in the backup' : ''}`,
      );
      continue;
    }
    counts[resource] = items.length;
    let read = 0;
    for (const o of items.slice(0, sampleSize)) {
      try {
        const got = await client.get(objectPath(path, o));
        if (got.metadata?.name !== o.metadata.name) throw new Error(`answered with ${got.metadata?.name}`);
        if (resource === 'secrets') {
          for (const [k, v] of Object.entries((got.data as Record<string, string> | undefined) ?? {}))
            if (typeof v !== 'string' || Buffer.from(v, 'base64').toString('base64') !== v) throw new Error(`data.${k} is not base64`);
        }
        read++;
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 404) continue; // gone since the revision: not a decode failure
        problems.push(
          `${resource} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}: cannot be read back (${(err as Error).message.slice(0, 200)})`,
        );
      }
    }
    sampled[resource] = read;
  }
  return { counts, sampled, problems };
}
