import { findCluster } from '../../src/config/load';
import { durationMs } from '../../src/schedules/backup-schedules';
import type { ActivityDeps } from '../deps';

export interface ResponsePolicy {
  cluster: string;
  onAlert: 'notify' | 'plan' | 'approve' | 'auto';
  confirmWindowSeconds: number;
  confirmProbes: number;
  approvalTimeoutSeconds: number;
  standbyNode?: string;
  /** Continuous backups are on: an alert recovers to the newest durable point. */
  continuous?: boolean;
}

/** The cluster's alert policy from the config, as plain values a workflow may keep in its history. */
export function responsePolicy(deps: ActivityDeps) {
  return async (input: { cluster: string }): Promise<ResponsePolicy> => {
    const c = findCluster(deps.config, input.cluster);
    return {
      cluster: c.name,
      onAlert: c.recovery.onAlert,
      confirmWindowSeconds: Math.round(durationMs(c.recovery.confirm.window) / 1000),
      confirmProbes: c.recovery.confirm.probes,
      approvalTimeoutSeconds: Math.round(durationMs(c.recovery.approvalTimeout) / 1000),
      standbyNode: c.recovery.standbyNode,
      ...(c.backup.continuous ? { continuous: true } : {}),
    };
  };
}
