import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DrillConfig } from '../config/schema';
import { withSession } from '../ssh/session';
import type { DrillToolPaths } from './etcd';
import { workerHost, type DrillHost } from './host';
import { sshDrillHost } from './ssh-host';

/**
 * Runs the body with the drill host: the worker, or the configured drill node over one SSH session (closed however
 * the body ends, and when `signal` aborts). The tool paths are the drill node's own maps when set, else drill.etcd /
 * drill.kubeApiserver (paths on the drill host).
 */
export async function withDrillHost<T>(
  drill: DrillConfig,
  body: (host: DrillHost, paths: DrillToolPaths) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const node = drill.node;
  if (!node) return body(workerHost, { etcd: drill.etcd, kubeApiserver: drill.kubeApiserver, field: 'drill' });
  const paths = {
    etcd: node.etcd ?? drill.etcd,
    kubeApiserver: node.kubeApiserver ?? drill.kubeApiserver,
    field: node.etcd ? 'drill.node' : 'drill',
  };
  return withSession(node, (s) => body(sshDrillHost(s), paths), { signal });
}

/**
 * The worker's own copy of the control-plane archive when the drill runs on a drill node (checked here, where the
 * drill's code reads it): named by the run key alone, so the clean-up step and a retry find it.
 */
export function workerCopyOf(runKey: string): string {
  return join(tmpdir(), `lifeboat-drill-${runKey}`);
}
