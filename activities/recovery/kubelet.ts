import { ApplicationFailure } from '@temporalio/common';
import { posix } from 'node:path';
import type { KubeClient } from '../../src/kube/client';
import {
  KUBEADM_FLAGS_FILE,
  KUBELET_FILES,
  kubeletCertificateSource,
  nodeNameFromCertificate,
  withHostnameOverride,
} from '../../src/recovery/kubelet-identity';
import type { RecoveryPlan } from '../../src/recovery/plan';
import { cancellationSignal, throttledHeartbeat } from '../heartbeat';
import type { TargetSession } from './on-target';

export interface KubeletRestore {
  /** The Node the kubelet's certificate acts for: the one it registers as. */
  node?: string;
  placed: string[];
  movedAside: string[];
  /** kubeadm-flags.env got --hostname-override (the machine's hostname differs from the Node's name). */
  hostnameOverride?: boolean;
  restarted: boolean;
  /** Why nothing was done (an old backup without the kubelet's files). */
  skipped?: string;
}

/** The Node name of the node's kubelet, from its kubelet.conf's client certificate (embedded or a file). */
export async function kubeletNodeName(s: TargetSession): Promise<string> {
  const conf = (await s.run(['cat', `${s.cluster.paths.kubernetesDir}/kubelet.conf`])).stdout;
  const source = kubeletCertificateSource(conf);
  const pem = 'pem' in source ? source.pem : (await s.run(['cat', source.file])).stdout;
  return nodeNameFromCertificate(pem);
}

/**
 * new-node: the old node's kubelet identity (config.yaml, kubeadm-flags.env, pki/) from the unpacked backup into the
 * kubelet's folder, anything there moved to <runDir>/replaced; the node name pinned with --hostname-override when
 * this machine's hostname differs; then `systemctl restart kubelet` (what kubeadm does), so the machine's kubelet —
 * unconfigured on a freshly provisioned node — runs the static pods the start step puts back and reports as the
 * same Node. Each placement is marked, so a retried attempt does not move the placed files aside again.
 */
export async function restoreKubeletIdentity(s: TargetSession, plan: RecoveryPlan): Promise<KubeletRestore> {
  const { paths } = plan;
  const kubeletDir = s.cluster.paths.kubeletDir;
  const staged = `${paths.controlPlaneFilesDir}/${posix.basename(kubeletDir)}`;
  if (!(await s.exists(`${staged}/config.yaml`))) {
    return {
      placed: [],
      movedAside: [],
      restarted: false,
      skipped: `the backup holds no ${kubeletDir}/config.yaml (taken before backups carried the kubelet's files): join this node's kubelet by hand (kubeadm join phase kubelet-start)`,
    };
  }
  const placed: string[] = [];
  const movedAside: string[] = [];
  await s.run(['mkdir', '-p', '-m', '0700', kubeletDir]);
  // config.yaml last: a kubelet that waits for its configuration (kubeadm's restart loop on a fresh machine) starts
  // the moment it appears, and must find its identity in place then, not bootstrap over it while pki/ is copied.
  for (const f of [...KUBELET_FILES].sort((a, b) => Number(a === 'config.yaml') - Number(b === 'config.yaml'))) {
    const marker = `${paths.runDir}/replaced/.placed-kubelet-${f}`;
    if (!(await s.exists(`${staged}/${f}`)) || (await s.exists(marker))) continue;
    const dest = `${kubeletDir}/${f}`;
    if (await s.exists(dest)) {
      await s.run(['mv', '-T', dest, `${paths.runDir}/replaced/kubelet-${f}`]);
      movedAside.push(`${dest} -> ${paths.runDir}/replaced/kubelet-${f}`);
    }
    await s.run(['cp', '-a', `${staged}/${f}`, dest]);
    await s.run(['touch', marker]);
    placed.push(dest);
  }
  const node = await kubeletNodeName(s);
  const hostname = (await s.run(['uname', '-n'])).stdout.trim();
  let hostnameOverride = false;
  if (hostname !== node) {
    const flagsFile = `${kubeletDir}/${KUBEADM_FLAGS_FILE}`;
    const current = (await s.run(['cat', flagsFile], { allowFailure: true })).stdout;
    const pinned = withHostnameOverride(current, node);
    if (pinned !== current) {
      await s.run(['sh', '-c', 'umask 077; cat > "$1.lifeboat" && mv -f "$1.lifeboat" "$1"', 'sh', flagsFile], { stdin: pinned });
    }
    hostnameOverride = true;
  }
  const restart = await s.run(['systemctl', 'restart', 'kubelet'], { allowFailure: true });
  if (restart.code !== 0) {
    throw ApplicationFailure.retryable(
      `the kubelet's identity is in place on node "${s.node.name}" but \`systemctl restart kubelet\` failed (${restart.stderr.trim().split('\n').pop() ?? `exit ${restart.code}`}): start the kubelet there`,
      'KubeletRestartFailed',
    );
  }
  return { node, placed, movedAside, hostnameOverride, restarted: true };
}

export interface NodeReadiness {
  node: string;
  ready: boolean;
  /** The Ready condition's reason and message as last seen. */
  detail: string;
  waitedSeconds: number;
}

interface NodeObject {
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}
interface LeaseObject {
  spec?: { renewTime?: string };
}

/**
 * Waits until the Node is Ready and its kubelet is alive now: the restored etcd holds the Node as it was at backup
 * time (Ready, with an old lease), so Ready alone proves nothing; a lease renewed after our first look does (the
 * kubelet renews it every 10 s). Comparing two of the kubelet's own timestamps avoids trusting the clocks to agree.
 */
export async function waitForNodeReady(api: KubeClient, node: string, timeoutMs: number): Promise<NodeReadiness> {
  const started = Date.now();
  const heartbeat = throttledHeartbeat();
  const signal = cancellationSignal();
  const name = encodeURIComponent(node);
  const renewTime = async () => {
    const r = await api.raw('GET', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}`).catch(() => undefined);
    return r?.status === 200 ? (JSON.parse(r.text) as LeaseObject).spec?.renewTime : undefined;
  };
  const first = await renewTime();
  let detail: string;
  for (;;) {
    const r = await api.raw('GET', `/api/v1/nodes/${name}`).catch((err: Error) => ({ status: 0, text: err.message }));
    let ready = false;
    if (r.status === 200) {
      const cond = (JSON.parse(r.text) as NodeObject).status?.conditions?.find((c) => c.type === 'Ready');
      ready = cond?.status === 'True';
      detail = cond
        ? `Ready=${cond.status}${cond.reason ? ` (${cond.reason}${cond.message ? `: ${cond.message}` : ''})` : ''}`
        : 'no Ready condition';
    } else {
      detail = r.status === 404 ? 'the Node does not exist' : `GET node: ${r.status} ${r.text.slice(0, 200)}`;
    }
    const renewed = await renewTime();
    const alive = renewed !== undefined && renewed !== first;
    if (ready && alive) return { node, ready: true, detail, waitedSeconds: Math.round((Date.now() - started) / 1000) };
    if (ready && !alive) detail = `${detail}; lease not renewed since ${first ?? '(no lease)'}`;
    const waited = Date.now() - started;
    if (waited > timeoutMs || signal?.aborted) return { node, ready: false, detail, waitedSeconds: Math.round(waited / 1000) };
    heartbeat({ node, detail });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}
