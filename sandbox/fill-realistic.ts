import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import type { SandboxCluster } from './cluster';

/**
 * Fills the control-plane node's etcd with ~`mib` MiB of Kubernetes-shaped objects, written straight into
 * `/registry/<resource>/<namespace>/<name>` keys: ConfigMaps holding config-file text, Secrets (base64 of random
 * bytes: certificates, tokens), Deployments, Pods (with managedFields and last-applied annotations, as kubectl and
 * the controllers leave them), Services, Events and node Leases, then rounds of updates to the busy ones (pod and
 * deployment status, leases, events), so most keys have several revisions, as in a live cluster's etcd between
 * compactions. Values are JSON (kube-apiserver stores built-in types as protobuf, CRDs as JSON; both keep the
 * repeated field names and text that make snapshots compressible). Deterministic (seeded), and fast: puts go in
 * transactions of up to 128 keys / ~1 MiB over etcd's gRPC gateway (two in flight), ~1 GiB in well under a minute.
 *
 * Returns the bytes of values written and the number of puts.
 */
export async function fillRealistic(cluster: SandboxCluster, mib: number, seed = 1): Promise<{ bytes: number; puts: number }> {
  const node = cluster.controlPlane;
  const pki = (f: string) => readFile(node.path(`/etc/kubernetes/pki/etcd/${f}`));
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 2,
    ca: await pki('ca.crt'),
    cert: await pki('healthcheck-client.crt'),
    key: await pki('healthcheck-client.key'),
  });
  const txn = (ops: [string, string][]) =>
    new Promise<void>((resolve, reject) => {
      const body = JSON.stringify({
        success: ops.map(([k, v]) => ({
          requestPut: { key: Buffer.from(k).toString('base64'), value: Buffer.from(v).toString('base64') },
        })),
      });
      const req = request(
        { host: node.ip, port: 2379, path: '/v3/kv/txn', method: 'POST', agent, headers: { 'content-type': 'application/json' } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`etcd txn: HTTP ${res.statusCode}: ${text.slice(0, 300)}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  const rand = mulberry32(seed);
  const target = mib * 1048576;
  let bytes = 0;
  let puts = 0;
  const inFlight = new Set<Promise<void>>();
  let batch: [string, string][] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (!batch.length) return;
    const p = txn(batch).finally(() => inFlight.delete(p));
    inFlight.add(p);
    batch = [];
    batchBytes = 0;
    if (inFlight.size >= 2) await Promise.race(inFlight);
  };
  const put = async (key: string, value: string) => {
    if (batch.length >= 128 || batchBytes + value.length > 1_000_000) await flush();
    batch.push([key, value]);
    batchBytes += value.length + key.length;
    bytes += value.length;
    puts++;
  };

  try {
    const namespaces = Array.from({ length: 30 }, (_, i) => `${pick(rand, TEAMS)}-${i}`);
    const objects: { key: string; make: (gen: number) => string }[] = [];
    // The base population: ~40% of the target; the rest is revisions of the busy objects.
    let planned = 0;
    for (let i = 0; planned < target * 0.4; i++) {
      const ns = namespaces[i % namespaces.length];
      const app = `${pick(rand, APPS)}-${i}`;
      const replicas = 1 + Math.floor(rand() * 3);
      const image = `registry.example.com/${ns}/${app}:v1.${Math.floor(rand() * 40)}.${Math.floor(rand() * 9)}`;
      const env = Array.from({ length: 4 + Math.floor(rand() * 12) }, (_, e) => ({
        name: `${pick(rand, ENV_NAMES)}_${e}`,
        value: `${pick(rand, ENV_VALUES)}-${Math.floor(rand() * 1000)}`,
      }));
      const cfg = configText(rand, app, 3 + Math.floor(rand() * 40));
      const secret = randomBase64(rand, 1200 + Math.floor(rand() * 3000));
      const uid = () => uuid(rand);
      const [dUid, sUid, cUid, kUid] = [uid(), uid(), uid(), uid()];
      objects.push({ key: `/registry/deployments/${ns}/${app}`, make: (g) => deployment(ns, app, dUid, image, env, replicas, g) });
      objects.push({ key: `/registry/services/specs/${ns}/${app}`, make: () => service(ns, app, sUid, i) });
      objects.push({ key: `/registry/configmaps/${ns}/${app}-config`, make: (g) => configMap(ns, `${app}-config`, cUid, cfg, g) });
      objects.push({ key: `/registry/secrets/${ns}/${app}-tls`, make: (g) => secretJson(ns, `${app}-tls`, kUid, secret, g) });
      for (let r = 0; r < replicas; r++) {
        const pod = `${app}-${hex(rand, 10)}-${hex(rand, 5)}`;
        const [pUid, eUid] = [uid(), uid()];
        objects.push({ key: `/registry/pods/${ns}/${pod}`, make: (g) => podJson(ns, app, pod, pUid, dUid, image, env, g, i) });
        objects.push({ key: `/registry/events/${ns}/${pod}.${hex(rand, 16)}`, make: (g) => event(ns, pod, eUid, g) });
      }
      planned += 3000 + cfg.length + secret.length * 1.4 + replicas * 7000;
    }
    for (let n = 0; n < 20; n++) {
      const name = `node-${n}`;
      const lUid = uuid(rand);
      objects.push({ key: `/registry/leases/kube-node-lease/${name}`, make: (g) => lease(name, lUid, g) });
    }
    for (const o of objects) await put(o.key, o.make(0));
    // Revisions: the busy objects change again and again (status, heartbeats, rollouts), until the target is written.
    const busy = objects.filter((o) => /\/(pods|deployments|leases|events)\//.test(o.key) || rand() < 0.1);
    for (let g = 1; bytes < target; g++) {
      for (const o of busy) {
        if (bytes >= target) break;
        await put(o.key, o.make(g));
      }
    }
    await flush();
    await Promise.all(inFlight);
  } finally {
    agent.destroy();
  }
  return { bytes, puts };
}

const TEAMS = ['payments', 'search', 'checkout', 'identity', 'platform', 'data', 'ml', 'web', 'mobile', 'infra'];
const APPS = ['api', 'worker', 'frontend', 'gateway', 'scheduler', 'indexer', 'cache', 'notifier', 'ingest', 'reporter'];
const ENV_NAMES = [
  'LOG_LEVEL',
  'DATABASE_URL',
  'REDIS_HOST',
  'FEATURE_FLAG',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'JAVA_OPTS',
  'REGION',
  'TIMEOUT_MS',
];
const ENV_VALUES = [
  'info',
  'postgres://db.internal:5432/app',
  'redis-master.cache.svc',
  'enabled',
  'http://otel-collector:4317',
  '-Xmx512m',
  'eu-west-1',
];

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = <T>(rand: () => number, list: readonly T[]): T => list[Math.floor(rand() * list.length)];
const hex = (rand: () => number, n: number) => Array.from({ length: n }, () => '0123456789abcdef'[Math.floor(rand() * 16)]).join('');
const uuid = (rand: () => number) => `${hex(rand, 8)}-${hex(rand, 4)}-4${hex(rand, 3)}-a${hex(rand, 3)}-${hex(rand, 12)}`;
const time = (g: number, offset = 0) =>
  new Date(Date.UTC(2026, 10, 1) + g * 37_000 + offset * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

function randomBase64(rand: () => number, bytes: number): string {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = Math.floor(rand() * 256);
  return b.toString('base64');
}

/** Config-file text: an application.yaml-ish file with sections, comments and settings. */
function configText(rand: () => number, app: string, sections: number): string {
  const lines: string[] = [`# ${app} configuration, managed by the platform team`, `# changes here roll out with the next deploy`];
  for (let s = 0; s < sections; s++) {
    lines.push(`${pick(rand, ['server', 'database', 'cache', 'logging', 'metrics', 'auth', 'queue', 'features'])}_${s}:`);
    for (let k = 0; k < 4 + Math.floor(rand() * 10); k++) {
      const v = pick(rand, [
        'true',
        'false',
        `${Math.floor(rand() * 10000)}`,
        `"${pick(rand, ENV_VALUES)}"`,
        `${Math.floor(rand() * 60)}s`,
      ]);
      lines.push(
        `  ${pick(rand, ['enabled', 'timeout', 'max_connections', 'pool_size', 'endpoint', 'retries', 'level', 'ttl'])}_${k}: ${v}`,
      );
    }
  }
  return lines.join('\n') + '\n';
}

const meta = (ns: string, name: string, uid: string, g: number, extra: Record<string, unknown> = {}) => ({
  name,
  namespace: ns,
  uid,
  resourceVersion: String(1000 + g * 7919),
  generation: 1 + (g >> 2),
  creationTimestamp: time(0),
  labels: { app: name.split('-').slice(0, 2).join('-'), 'app.kubernetes.io/managed-by': 'Helm', team: ns.split('-')[0] },
  ...extra,
});

const managedFields = (manager: string, g: number) => [
  {
    manager,
    operation: 'Update',
    apiVersion: 'v1',
    time: time(g),
    fieldsType: 'FieldsV1',
    fieldsV1: { 'f:metadata': { 'f:labels': { '.': {}, 'f:app': {}, 'f:team': {} } }, 'f:spec': { 'f:containers': {} } },
  },
  {
    manager: 'kubelet',
    operation: 'Update',
    apiVersion: 'v1',
    time: time(g, 3),
    fieldsType: 'FieldsV1',
    fieldsV1: { 'f:status': { 'f:conditions': {}, 'f:containerStatuses': {}, 'f:phase': {}, 'f:podIP': {} } },
    subresource: 'status',
  },
];

function containerSpec(app: string, image: string, env: { name: string; value: string }[]) {
  return {
    name: app,
    image,
    ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
    env,
    resources: { limits: { cpu: '1', memory: '512Mi' }, requests: { cpu: '100m', memory: '128Mi' } },
    livenessProbe: { httpGet: { path: '/healthz', port: 8080, scheme: 'HTTP' }, periodSeconds: 10, failureThreshold: 3 },
    readinessProbe: { httpGet: { path: '/ready', port: 8080, scheme: 'HTTP' }, periodSeconds: 5, failureThreshold: 3 },
    volumeMounts: [{ name: 'config', mountPath: '/etc/app' }],
    terminationMessagePath: '/dev/termination-log',
    imagePullPolicy: 'IfNotPresent',
  };
}

function deployment(
  ns: string,
  app: string,
  uid: string,
  image: string,
  env: { name: string; value: string }[],
  replicas: number,
  g: number,
) {
  const spec = {
    replicas,
    selector: { matchLabels: { app } },
    template: { metadata: { labels: { app } }, spec: { containers: [containerSpec(app, image, env)], restartPolicy: 'Always' } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
  };
  return JSON.stringify({
    kind: 'Deployment',
    apiVersion: 'apps/v1',
    metadata: meta(ns, app, uid, g, {
      annotations: {
        'deployment.kubernetes.io/revision': String(1 + (g >> 2)),
        'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ apiVersion: 'apps/v1', kind: 'Deployment', spec }),
      },
      managedFields: managedFields('kube-controller-manager', g),
    }),
    spec,
    status: {
      observedGeneration: 1 + (g >> 2),
      replicas,
      updatedReplicas: replicas,
      readyReplicas: replicas - (g % 2),
      availableReplicas: replicas - (g % 2),
      conditions: [
        { type: 'Available', status: 'True', lastUpdateTime: time(g), lastTransitionTime: time(g), reason: 'MinimumReplicasAvailable' },
        { type: 'Progressing', status: 'True', lastUpdateTime: time(g, 2), lastTransitionTime: time(0), reason: 'NewReplicaSetAvailable' },
      ],
    },
  });
}

function podJson(
  ns: string,
  app: string,
  pod: string,
  uid: string,
  owner: string,
  image: string,
  env: { name: string; value: string }[],
  g: number,
  i: number,
) {
  return JSON.stringify({
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: meta(ns, pod, uid, g, {
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: pod.split('-').slice(0, -1).join('-'), uid: owner, controller: true },
      ],
      managedFields: managedFields('kube-controller-manager', g),
    }),
    spec: {
      containers: [containerSpec(app, image, env)],
      volumes: [{ name: 'config', configMap: { name: `${app}-config`, defaultMode: 420 } }],
      nodeName: `node-${i % 20}`,
      serviceAccountName: 'default',
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
    },
    status: {
      phase: 'Running',
      conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({
        type,
        status: 'True',
        lastProbeTime: null,
        lastTransitionTime: time(g, 1),
      })),
      hostIP: `10.0.${i % 20}.1`,
      podIP: `10.244.${i % 250}.${(i * 7) % 250}`,
      startTime: time(0),
      containerStatuses: [
        {
          name: app,
          state: { running: { startedAt: time(g, 4) } },
          ready: true,
          restartCount: g >> 1,
          image,
          imageID: `${image.split(':')[0]}@sha256:${'ab'.repeat(32)}`,
          containerID: `containerd://${'c'.repeat(8)}${String(g).padStart(56, '0')}`,
        },
      ],
    },
  });
}

function service(ns: string, app: string, uid: string, i: number) {
  return JSON.stringify({
    kind: 'Service',
    apiVersion: 'v1',
    metadata: meta(ns, app, uid, 0),
    spec: {
      ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }],
      selector: { app },
      clusterIP: `10.96.${i % 250}.${(i * 13) % 250}`,
      type: 'ClusterIP',
      sessionAffinity: 'None',
    },
  });
}

function configMap(ns: string, name: string, uid: string, text: string, g: number) {
  return JSON.stringify({ kind: 'ConfigMap', apiVersion: 'v1', metadata: meta(ns, name, uid, g), data: { 'application.yaml': text } });
}

function secretJson(ns: string, name: string, uid: string, data: string, g: number) {
  return JSON.stringify({
    kind: 'Secret',
    apiVersion: 'v1',
    metadata: meta(ns, name, uid, g),
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': data.slice(0, data.length >> 1), 'tls.key': data.slice(data.length >> 1) },
  });
}

function event(ns: string, pod: string, uid: string, g: number) {
  return JSON.stringify({
    kind: 'Event',
    apiVersion: 'v1',
    metadata: { name: `${pod}.${uid.slice(0, 8)}`, namespace: ns, uid, resourceVersion: String(2000 + g) },
    involvedObject: { kind: 'Pod', namespace: ns, name: pod, apiVersion: 'v1', fieldPath: 'spec.containers{app}' },
    reason: pick(mulberry32(g), ['Pulled', 'Created', 'Started', 'Unhealthy', 'BackOff']),
    message: `Readiness probe failed: Get "http://10.244.1.2:8080/ready": context deadline exceeded (attempt ${g})`,
    source: { component: 'kubelet', host: 'node-1' },
    firstTimestamp: time(0),
    lastTimestamp: time(g),
    count: g + 1,
    type: 'Warning',
  });
}

function lease(name: string, uid: string, g: number) {
  return JSON.stringify({
    kind: 'Lease',
    apiVersion: 'coordination.k8s.io/v1',
    metadata: { name, namespace: 'kube-node-lease', uid, resourceVersion: String(3000 + g) },
    spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: time(g).replace('Z', '.000000Z') },
  });
}
