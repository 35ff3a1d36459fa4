import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import type { RecoveryPlan } from '../../src/recovery/plan';
import type { TargetSession } from './on-target';

/**
 * A client for the restored API server with kubeadm's admin.conf, read from the node over SSH at the moment of use:
 * the admin credentials never leave the activity, and they are the ones the restored cluster itself trusts.
 */
export async function apiClientFor(s: TargetSession, plan: RecoveryPlan): Promise<KubeClient> {
  const text = (await s.run(['cat', `${s.cluster.paths.kubernetesDir}/admin.conf`])).stdout;
  return new KubeClient(credentialsFromKubeconfig(text, plan.apiServer), 5_000);
}
