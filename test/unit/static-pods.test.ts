import { parse } from 'yaml';
import { parseControlPlaneState } from '../../activities/recovery/static-pods';
import { manifestPod } from '../../activities/recovery/control-plane';
import { annotateStaticPodManifest, RECOVERY_ANNOTATION } from '../../src/recovery/static-pod-manifest';

describe('static-pod manifests put back by a recovery', () => {
  const yaml = `# written by kubeadm
apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://10.0.0.10:2379
  labels:
    component: etcd   # kept
  name: etcd
  namespace: kube-system
spec:
  containers:
  - command:
    - etcd
    image: registry.k8s.io/etcd:3.6.4-0
`;

  it("adds the run annotation and keeps everything else, comments included, in kubeadm's style", () => {
    const out = annotateStaticPodManifest(yaml, 'etcd.yaml', 'abc123');
    expect(out.annotated).toBe(true);
    expect(out.text).toContain('# written by kubeadm');
    expect(out.text).toMatch(/component: etcd +# kept/);
    expect(out.text).toContain('\n  - command:\n'); // kubeadm's style of sequences
    const pod = parse(out.text) as { metadata: { annotations: Record<string, string> }; spec: unknown };
    expect(pod.metadata.annotations).toEqual({
      'kubeadm.kubernetes.io/etcd.advertise-client-urls': 'https://10.0.0.10:2379',
      [RECOVERY_ANNOTATION]: 'abc123',
    });
    expect(pod.spec).toEqual((parse(yaml) as { spec: unknown }).spec);
  });

  it('replaces the annotation of an earlier recovery, adds annotations where there were none, and handles JSON', () => {
    const again = annotateStaticPodManifest(annotateStaticPodManifest(yaml, 'etcd.yaml', 'first').text, 'etcd.yaml', 'second');
    expect((parse(again.text) as { metadata: { annotations: Record<string, string> } }).metadata.annotations[RECOVERY_ANNOTATION]).toBe(
      'second',
    );
    const bare = annotateStaticPodManifest('apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n', 'x.yml', 'r1');
    expect((parse(bare.text) as { metadata: { annotations: Record<string, string> } }).metadata.annotations).toEqual({
      [RECOVERY_ANNOTATION]: 'r1',
    });
    // A run key of digits only (a leading zero, too) stays a string: the kubelet refuses a number as an annotation.
    const digits = annotateStaticPodManifest(yaml, 'etcd.yaml', '066509042632');
    expect((parse(digits.text) as { metadata: { annotations: Record<string, unknown> } }).metadata.annotations[RECOVERY_ANNOTATION]).toBe(
      '066509042632',
    );
    const json = annotateStaticPodManifest('{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"}}', 'j.json', 'r2');
    expect(JSON.parse(json.text)).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'j', annotations: { [RECOVERY_ANNOTATION]: 'r2' } },
    });
  });

  it('leaves a file that is not one mapping as it is', () => {
    expect(annotateStaticPodManifest('a: [unclosed', 'bad.yaml', 'r')).toEqual({ text: 'a: [unclosed', annotated: false });
    expect(annotateStaticPodManifest('- 1\n- 2\n', 'list.yaml', 'r')).toEqual({ text: '- 1\n- 2\n', annotated: false });
    expect(annotateStaticPodManifest('{nope', 'bad.json', 'r')).toEqual({ text: '{nope', annotated: false });
  });

  it('names the pod a manifest describes', () => {
    expect(manifestPod(yaml)).toEqual({ namespace: 'kube-system', name: 'etcd' });
    expect(manifestPod('metadata: {name: x}')).toEqual({ namespace: 'default', name: 'x' });
    expect(manifestPod(': :')).toBeUndefined();
  });
});

describe('the control plane as crictl reports it while it stops', () => {
  const pods = {
    items: [
      {
        id: 'p-etcd',
        metadata: { name: 'etcd-cp1', namespace: 'kube-system' },
        labels: { component: 'etcd' },
        annotations: { 'kubernetes.io/config.source': 'file' },
      },
      {
        id: 'p-api',
        metadata: { name: 'kube-apiserver-cp1', namespace: 'kube-system' },
        labels: { component: 'kube-apiserver' },
        annotations: { 'kubernetes.io/config.source': 'file' },
      },
      {
        id: 'p-other',
        metadata: { name: 'haproxy-cp1', namespace: 'kube-system' },
        annotations: { 'kubernetes.io/config.source': 'file' },
      },
      {
        id: 'p-api-pod',
        metadata: { name: 'kube-apiserver-cp1-x', namespace: 'default' },
        annotations: { 'kubernetes.io/config.source': 'api' },
      },
    ],
  };
  const containers = {
    containers: [
      { id: 'c1', podSandboxId: 'p-etcd', metadata: { name: 'etcd' }, state: 'CONTAINER_RUNNING' },
      { id: 'c2', podSandboxId: 'p-api', metadata: { name: 'kube-apiserver' }, state: 'CONTAINER_RUNNING' },
      { id: 'c3', podSandboxId: 'p-other', metadata: { name: 'haproxy' }, state: 'CONTAINER_RUNNING' },
      { id: 'c4', podSandboxId: 'p-api-pod', metadata: { name: 'app' }, state: 'CONTAINER_RUNNING' },
    ],
  };
  const manifests = [
    { namespace: 'kube-system', name: 'etcd' },
    { namespace: 'kube-system', name: 'kube-apiserver' },
  ];

  it('counts only running containers of the static pods whose manifests moved, and marks etcd', () => {
    const out = `0.0.0.0:22\n127.0.0.1:2379\n[::]:6443\n--- cri\n--- pods\n${JSON.stringify(pods)}\n--- containers\n${JSON.stringify(containers)}\n`;
    expect(parseControlPlaneState(out, [2379, 6443], manifests)).toEqual({
      listening: [2379, 6443],
      running: [
        { id: 'c1', name: 'etcd', pod: 'kube-system/etcd-cp1', etcd: true },
        { id: 'c2', name: 'kube-apiserver', pod: 'kube-system/kube-apiserver-cp1', etcd: false },
      ],
    });
  });

  it('says why the container runtime cannot be used', () => {
    expect(parseControlPlaneState('0.0.0.0:22\n--- cri\ncrictl is not installed on the node\n', [2379, 6443], manifests)).toEqual({
      listening: [],
      criUnavailable: 'crictl is not installed on the node',
      running: [],
    });
    expect(parseControlPlaneState('--- cri\n--- pods\n{oops\n--- containers\n{}\n', [2379], manifests).criUnavailable).toMatch(
      /did not parse/,
    );
  });
});
