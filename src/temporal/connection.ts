import { readFile } from 'node:fs/promises';
import type { Config } from '../config/schema';

export interface TemporalTarget {
  address: string;
  namespace: string;
  taskQueue: string;
  tls?: { serverRootCACertificate?: Buffer; clientCertPair: { crt: Buffer; key: Buffer }; serverNameOverride?: string };
}

/** Environment wins over the file, so one image serves every environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE). */
export async function temporalTarget(config: Config, env = process.env): Promise<TemporalTarget> {
  const t = config.temporal;
  const target: TemporalTarget = {
    address: env.TEMPORAL_ADDRESS ?? t.address,
    namespace: env.TEMPORAL_NAMESPACE ?? t.namespace,
    taskQueue: env.LIFEBOAT_TASK_QUEUE ?? t.taskQueue,
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
