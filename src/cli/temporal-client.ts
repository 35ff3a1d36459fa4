import { Client, Connection } from '@temporalio/client';
import type { Config } from '../config/schema';
import { temporalTarget } from '../temporal/connection';

/** A Temporal client for CLI commands; the caller closes it with `close()`. */
export async function openClient(config: Config): Promise<{ client: Client; taskQueue: string; close(): Promise<void> }> {
  const target = await temporalTarget(config);
  const connection = await Connection.connect({ address: target.address, tls: target.tls, connectTimeout: 10_000 }).catch((err: Error) => {
    throw new Error(
      `cannot reach Temporal at ${target.address} (${err.message}); is the server up? (TEMPORAL_ADDRESS or temporal.address in the config)`,
    );
  });
  const client = new Client({ connection, namespace: target.namespace });
  return { client, taskQueue: target.taskQueue, close: () => connection.close() };
}
