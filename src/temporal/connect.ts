import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from '../config/schema';
import { connectionOptions, describeTarget, temporalTarget, type TemporalTarget } from './connection';
import { dataConverter } from './data-converter';
import { explainConnectError } from './connect-errors';

export interface TemporalClient {
  client: Client;
  connection: Connection;
  target: TemporalTarget;
  close(): Promise<void>;
}

/**
 * A client with the engine's connection options and data converter. `target` overrides the resolved one (`npm start`
 * points at its own plain dev server); a failure to connect names the setting to fix.
 */
export async function connectClient(
  config: Config,
  o: { target?: TemporalTarget; connectTimeoutMs?: number } = {},
): Promise<TemporalClient> {
  const target = o.target ?? (await temporalTarget(config));
  const connection = await Connection.connect({ ...connectionOptions(target), connectTimeout: o.connectTimeoutMs ?? 10_000 }).catch(
    async (err: unknown) => {
      throw await explainConnectError(err, target);
    },
  );
  const client = new Client({ connection, namespace: target.namespace, dataConverter: dataConverter(config) });
  // Connection.connect only opens the channel; a call proves the TLS handshake, the credentials and the namespace.
  await client.workflowService.getSystemInfo({}).catch(async (err: unknown) => {
    await connection.close();
    throw await explainConnectError(err, target);
  });
  return { client, connection, target, close: () => connection.close() };
}

/** The worker's own (Rust) connection, with the same options. */
export async function connectNative(target: TemporalTarget): Promise<NativeConnection> {
  return NativeConnection.connect(connectionOptions(target)).catch(async (err: unknown) => {
    throw await explainConnectError(err, target);
  });
}

export { describeTarget };
