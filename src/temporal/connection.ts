import { readFile } from 'node:fs/promises';
import type { Config } from '../config/schema';

export interface TemporalTarget {
  address: string;
  namespace: string;
  taskQueue: string;
  tls?: { serverRootCACertificate?: Buffer; clientCertPair: { crt: Buffer; key: Buffer }; serverNameOverride?: string };
}

/**
 * The task queue the worker polls and every start (CLI, schedules, alert receiver) targets: LIFEBOAT_TASK_QUEUE, else
 * temporal.taskQueue. The one place it is decided, so a schedule never starts runs on a queue no worker polls.
 */
export function taskQueueOf(config: Config, env: NodeJS.ProcessEnv = process.env): string {
  return env.LIFEBOAT_TASK_QUEUE ?? config.temporal.taskQueue;
}

/** Environment wins over the file, so one image serves every environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE). */
export async function temporalTarget(config: Config, env = process.env): Promise<TemporalTarget> {
  const t = config.temporal;
  const target: TemporalTarget = {
    address: env.TEMPORAL_ADDRESS ?? t.address,
    namespace: env.TEMPORAL_NAMESPACE ?? t.namespace,
    taskQueue: taskQueueOf(config, env),
  };
  if (t.tls) {
    target.tls = {
      serverRootCACertificate: t.tls.caFile ? await readFile(t.tls.caFile) : undefined,
      clientCertPair: { crt: await readFile(t.tls.certFile), key: await readFile(t.tls.keyFile) },
      serverNameOverride: t.tls.serverName,
    };
  }
  return target;
}
