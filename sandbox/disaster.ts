import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { SandboxNode } from './node';

/**
 * The disaster the alert path answers: every static pod's process on the node killed at once and etcd's data wiped.
 * The kubelet then restarts etcd (empty) and the API server, which writes its default objects again.
 */
export async function wipeControlPlane(node: SandboxNode): Promise<void> {
  const pids = (await node.pods()).flatMap((p) => p.containers.map((c) => c.pid)).filter(Boolean);
  await node.exec(['bash', '-c', `kill -9 ${pids.join(' ')}; rm -rf /var/lib/etcd/member`]);
}

/** Kills (SIGKILL) the processes of one static pod (`etcd`, `kube-apiserver`, ...); its kubelet starts them again. */
export async function killStaticPod(node: SandboxNode, name: string): Promise<void> {
  const pids = (await node.pods()).flatMap((p) => (p.name.startsWith(`${name}-`) ? p.containers.map((c) => c.pid) : []));
  if (!pids.some(Boolean)) throw new Error(`node ${node.name}: no running ${name} pod to kill`);
  await node.exec(['bash', '-c', `kill -9 ${pids.filter(Boolean).join(' ')}`]);
}

/** Where a static pod's manifest waits while the pod is stopped (outside the kubelet's folder). */
const aside = (name: string) => `/var/lib/${name}.yaml.aside`;

/** Stops a static pod as an operator's mistake would: its manifest moved out of the kubelet's folder. */
export async function stopStaticPod(node: SandboxNode, name: string): Promise<void> {
  await node.exec(['mv', `/etc/kubernetes/manifests/${name}.yaml`, aside(name)]);
}

/**
 * Puts a stopped static pod's manifest back (a no-op when it is not aside, e.g. after a test failed half way). As a
 * new pod unless `sameBytes`: the kubelet derives a static pod's UID from the manifest, and the same bytes again can
 * revive the stopped pod in crash back-off (~15 s). A changed annotation is what an operator's edit (or a recovery's
 * start step) gives it. `sameBytes` puts the very file back, for a test that compares the node before and after.
 */
export async function startStaticPod(node: SandboxNode, name: string, options: { sameBytes?: boolean } = {}): Promise<void> {
  const text = await readFile(node.path(aside(name)), 'utf8').catch(() => undefined);
  if (text === undefined) return;
  if (options.sameBytes) {
    await node.exec(['mv', aside(name), `/etc/kubernetes/manifests/${name}.yaml`]);
    return;
  }
  const manifest = parseDocument(text);
  manifest.setIn(['metadata', 'annotations', 'lifeboat.sandbox/re-added'], new Date().toISOString());
  const tmp = node.path(`/etc/kubernetes/manifests/.${name}.yaml.tmp`);
  await writeFile(tmp, manifest.toString(), { mode: 0o600 });
  await rename(tmp, node.path(`/etc/kubernetes/manifests/${name}.yaml`));
  await rm(node.path(aside(name)));
}
