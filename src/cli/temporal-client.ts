import type { Client } from '@temporalio/client';
import type { Config } from '../config/schema';
import { connectClient } from '../temporal/connect';

/** A Temporal client for CLI commands (the engine's connection options and data converter); the caller closes it. */
export async function openClient(config: Config): Promise<{ client: Client; taskQueue: string; close(): Promise<void> }> {
  const { client, target, close } = await connectClient(config);
  return { client, taskQueue: target.taskQueue, close };
}
