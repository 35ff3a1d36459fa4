import { stringify } from 'yaml';

/**
 * Static-pod manifests shaped like the ones `kubeadm init` writes (flags, volumes, hostPaths), so product code that
 * reads and moves them is exercised against the real layout.
 */
export interface ManifestOptions {
  nodeName: string;
  ip: string;
  etcdImage: string;
  apiserverImage: string;
  /** kube-scheduler and kube-controller-manager images (same Kubernetes version as the API server). */
  schedulerImage?: string;
  controllerManagerImage?: string;
  /** etcd >= 3.5 flags that speed up a test server; 3.4 rejects them. */
  etcdFastFlags: boolean;
}

function hostPathVolume(name: string, path: string, type: string) {
  return { name, hostPath: { path, type } };
}

export function etcdManifest(o: ManifestOptions): string {
  const command = [
    'etcd',
    `--advertise-client-urls=https://${o.ip}:2379`,
    '--cert-file=/etc/kubernetes/pki/etcd/server.crt',
    '--client-cert-auth=true',
    '--data-dir=/var/lib/etcd',
    `--initial-advertise-peer-urls=https://${o.ip}:2380`,
    `--initial-cluster=${o.nodeName}=https://${o.ip}:2380`,
    '--key-file=/etc/kubernetes/pki/etcd/server.key',
    `--listen-client-urls=https://127.0.0.1:2379,https://${o.ip}:2379`,
    '--listen-metrics-urls=http://127.0.0.1:2381',
    `--listen-peer-urls=https://${o.ip}:2380`,
    `--name=${o.nodeName}`,
    '--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt',
    '--peer-client-cert-auth=true',
    '--peer-key-file=/etc/kubernetes/pki/etcd/peer.key',
    '--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt',
    '--snapshot-count=10000',
    '--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt',
    ...(o.etcdFastFlags ? ['--unsafe-no-fsync=true'] : []),
  ];
  return stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      annotations: { 'kubeadm.kubernetes.io/etcd.advertise-client-urls': `https://${o.ip}:2379` },
      labels: { component: 'etcd', tier: 'control-plane' },
      name: 'etcd',
      namespace: 'kube-system',
    },
    spec: {
      containers: [
        {
          name: 'etcd',
          image: o.etcdImage,
          imagePullPolicy: 'IfNotPresent',
          command,
          volumeMounts: [
            { mountPath: '/var/lib/etcd', name: 'etcd-data' },
            { mountPath: '/etc/kubernetes/pki/etcd', name: 'etcd-certs' },
          ],
        },
      ],
      hostNetwork: true,
      priorityClassName: 'system-node-critical',
      volumes: [
        hostPathVolume('etcd-certs', '/etc/kubernetes/pki/etcd', 'DirectoryOrCreate'),
        hostPathVolume('etcd-data', '/var/lib/etcd', 'DirectoryOrCreate'),
      ],
    },
  });
}

export function kubeApiserverManifest(o: ManifestOptions): string {
  const pki = '/etc/kubernetes/pki';
  const command = [
    'kube-apiserver',
    `--advertise-address=${o.ip}`,
    '--allow-privileged=true',
    '--authorization-mode=Node,RBAC',
    `--client-ca-file=${pki}/ca.crt`,
    '--enable-admission-plugins=NodeRestriction',
    '--enable-bootstrap-token-auth=true',
    `--etcd-cafile=${pki}/etcd/ca.crt`,
    `--etcd-certfile=${pki}/apiserver-etcd-client.crt`,
    `--etcd-keyfile=${pki}/apiserver-etcd-client.key`,
    '--etcd-servers=https://127.0.0.1:2379',
    `--kubelet-client-certificate=${pki}/apiserver-kubelet-client.crt`,
    `--kubelet-client-key=${pki}/apiserver-kubelet-client.key`,
    '--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname',
    `--proxy-client-cert-file=${pki}/front-proxy-client.crt`,
    `--proxy-client-key-file=${pki}/front-proxy-client.key`,
    '--requestheader-allowed-names=front-proxy-client',
    `--requestheader-client-ca-file=${pki}/front-proxy-ca.crt`,
    '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    '--requestheader-group-headers=X-Remote-Group',
    '--requestheader-username-headers=X-Remote-User',
    '--secure-port=6443',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${pki}/sa.pub`,
    `--service-account-signing-key-file=${pki}/sa.key`,
    '--service-cluster-ip-range=10.96.0.0/12',
    `--tls-cert-file=${pki}/apiserver.crt`,
    `--tls-private-key-file=${pki}/apiserver.key`,
  ];
  return stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      annotations: { 'kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint': `${o.ip}:6443` },
      labels: { component: 'kube-apiserver', tier: 'control-plane' },
      name: 'kube-apiserver',
      namespace: 'kube-system',
    },
    spec: {
      containers: [
        {
          name: 'kube-apiserver',
          image: o.apiserverImage,
          imagePullPolicy: 'IfNotPresent',
          command,
          volumeMounts: [
            { mountPath: '/etc/ssl/certs', name: 'ca-certs', readOnly: true },
            { mountPath: '/etc/kubernetes/pki', name: 'k8s-certs', readOnly: true },
          ],
        },
      ],
      hostNetwork: true,
      priorityClassName: 'system-node-critical',
      volumes: [
        hostPathVolume('ca-certs', '/etc/ssl/certs', 'DirectoryOrCreate'),
        hostPathVolume('k8s-certs', '/etc/kubernetes/pki', 'DirectoryOrCreate'),
      ],
    },
  });
}

/** A kubeconfig file mounted at its own path, as kubeadm mounts scheduler.conf and controller-manager.conf. */
function kubeconfigVolume(name: string, path: string) {
  return { volume: hostPathVolume(name, path, 'FileOrCreate'), mount: { mountPath: path, name, readOnly: true } };
}

/** kubeadm's liveness/startup probes: HTTPS /healthz on the component's loopback secure port. */
function healthzProbe(port: number, failureThreshold: number) {
  return {
    failureThreshold,
    httpGet: { host: '127.0.0.1', path: '/healthz', port, scheme: 'HTTPS' },
    initialDelaySeconds: 10,
    periodSeconds: 10,
    timeoutSeconds: 15,
  };
}

export function kubeSchedulerManifest(o: ManifestOptions): string {
  const conf = '/etc/kubernetes/scheduler.conf';
  const kubeconfig = kubeconfigVolume('kubeconfig', conf);
  const command = [
    'kube-scheduler',
    `--authentication-kubeconfig=${conf}`,
    `--authorization-kubeconfig=${conf}`,
    '--bind-address=127.0.0.1',
    `--kubeconfig=${conf}`,
    '--leader-elect=true',
  ];
  return stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { labels: { component: 'kube-scheduler', tier: 'control-plane' }, name: 'kube-scheduler', namespace: 'kube-system' },
    spec: {
      containers: [
        {
          name: 'kube-scheduler',
          image: o.schedulerImage ?? 'registry.k8s.io/kube-scheduler:v1.34.0',
          imagePullPolicy: 'IfNotPresent',
          command,
          livenessProbe: healthzProbe(10259, 8),
          startupProbe: healthzProbe(10259, 24),
          resources: { requests: { cpu: '100m' } },
          volumeMounts: [kubeconfig.mount],
        },
      ],
      hostNetwork: true,
      priority: 2000001000,
      priorityClassName: 'system-node-critical',
      securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
      volumes: [kubeconfig.volume],
    },
  });
}

export function kubeControllerManagerManifest(o: ManifestOptions): string {
  const pki = '/etc/kubernetes/pki';
  const conf = '/etc/kubernetes/controller-manager.conf';
  const kubeconfig = kubeconfigVolume('kubeconfig', conf);
  const command = [
    'kube-controller-manager',
    `--authentication-kubeconfig=${conf}`,
    `--authorization-kubeconfig=${conf}`,
    '--bind-address=127.0.0.1',
    `--client-ca-file=${pki}/ca.crt`,
    '--cluster-name=kubernetes',
    `--cluster-signing-cert-file=${pki}/ca.crt`,
    `--cluster-signing-key-file=${pki}/ca.key`,
    '--controllers=*,bootstrapsigner,tokencleaner',
    `--kubeconfig=${conf}`,
    '--leader-elect=true',
    `--requestheader-client-ca-file=${pki}/front-proxy-ca.crt`,
    `--root-ca-file=${pki}/ca.crt`,
    `--service-account-private-key-file=${pki}/sa.key`,
    '--use-service-account-credentials=true',
  ];
  return stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      labels: { component: 'kube-controller-manager', tier: 'control-plane' },
      name: 'kube-controller-manager',
      namespace: 'kube-system',
    },
    spec: {
      containers: [
        {
          name: 'kube-controller-manager',
          image: o.controllerManagerImage ?? 'registry.k8s.io/kube-controller-manager:v1.34.0',
          imagePullPolicy: 'IfNotPresent',
          command,
          livenessProbe: healthzProbe(10257, 8),
          startupProbe: healthzProbe(10257, 24),
          resources: { requests: { cpu: '200m' } },
          volumeMounts: [
            { mountPath: '/etc/ssl/certs', name: 'ca-certs', readOnly: true },
            { mountPath: '/usr/libexec/kubernetes/kubelet-plugins/volume/exec', name: 'flexvolume-dir' },
            { mountPath: pki, name: 'k8s-certs', readOnly: true },
            kubeconfig.mount,
          ],
        },
      ],
      hostNetwork: true,
      priority: 2000001000,
      priorityClassName: 'system-node-critical',
      securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
      volumes: [
        hostPathVolume('ca-certs', '/etc/ssl/certs', 'DirectoryOrCreate'),
        hostPathVolume('flexvolume-dir', '/usr/libexec/kubernetes/kubelet-plugins/volume/exec', 'DirectoryOrCreate'),
        hostPathVolume('k8s-certs', pki, 'DirectoryOrCreate'),
        kubeconfig.volume,
      ],
    },
  });
}
