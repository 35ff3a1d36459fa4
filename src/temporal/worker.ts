import type { Client } from '@temporalio/client';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createActivities } from '../../activities';
import type { Config } from '../config/schema';
import type { LiveConfig } from '../config/reload';
import { temporalTarget, type TemporalTarget } from './connection';
import { connectClient, connectNative } from './connect';
import { workerDataConverter } from './data-converter';
import { deploymentOptions, workerDeployment, type WorkerDeployment } from './deployment';

export interface WorkerOptions {
  config: Config;
  /** The config steps read when they run, reloaded on SIGHUP (`lifeboat worker`); without it, `config` throughout. */
  live?: Pick<LiveConfig, 'current'>;
  logger: Logger;
  /** Overrides config/env (tests use one queue per file). */
  taskQueue?: string;
  /** Overrides the resolved connection (`npm start` points at its own plain dev server). */
  target?: TemporalTarget;
  /**
   * A pre-built bundle (tests build one per file; it must be built with the worker data converter's
   * payloadConverterPath and, with payload encryption, failureConverterPath); otherwise the worker bundles workflows/ itself.
   */
  workflowBundle?: WorkflowBundleWithSourceMap;
}

export const workflowsPath = require.resolve('../../workflows');

/**
 * The bundle `npm run build` writes next to the compiled code (absent when running from source: tests); with payload
 * encryption, the one built with the failure converter that encrypts failure messages too.
 */
function prebuiltBundle(encrypted: boolean): { codePath: string } | undefined {
  const codePath = join(__dirname, encrypted ? '../../workflow-bundle-encrypted.js' : '../../workflow-bundle.js');
  return __dirname.includes('/dist/') && existsSync(codePath) ? { codePath } : undefined;
}

export interface CreatedWorker {
  worker: Worker;
  taskQueue: string;
  client: Client;
  close(): Promise<void>;
  deployment?: WorkerDeployment;
}

/** A worker bound to the engine's workflows and activities; the caller runs and shuts it down. */
export async function createWorker(o: WorkerOptions): Promise<CreatedWorker> {
  const target = o.target ?? (await temporalTarget(o.config));
  const { client, close: closeClient } = await connectClient(o.config, { target });
  const connection = await connectNative(target).catch(async (err: unknown) => {
    await closeClient();
    throw err;
  });
  const namespace = target.namespace;
  const taskQueue = o.taskQueue ?? target.taskQueue;
  const converter = workerDataConverter(o.config);
  const bundle = o.workflowBundle ?? prebuiltBundle(converter.failureConverterPath !== undefined);
  let deployment: WorkerDeployment | undefined;
  let worker: Worker;
  try {
    // The build id defaults to a hash of the bundle this worker runs (src/temporal/deployment.ts).
    deployment = workerDeployment(o.config, bundle && ('code' in bundle ? bundle.code : readFileSync(bundle.codePath, 'utf8')));
    worker = await Worker.create({
      connection,
      namespace,
      taskQueue,
      dataConverter: converter,
      activities: createActivities({
        get config() {
          return o.live?.current ?? o.config;
        },
        logger: o.logger,
        client,
      }),
      // The SDK sends an activity's heartbeats at most every 80% of its heartbeat timeout (24 s of our 30 s), leaving
      // 6 s for the call to reach the server: a server slow for that long times out a live attempt. Every
      // 5 s leaves 25 s, and a cancellation (which rides on a heartbeat's answer) arrives within 5 s, not 24.
      maxHeartbeatThrottleInterval: '5 seconds',
      ...(bundle ? { workflowBundle: bundle } : { workflowsPath }),
      ...(deployment ? { workerDeploymentOptions: deploymentOptions(deployment) } : {}),
    });
  } catch (err) {
    await closeClient();
    await connection.close();
    throw err;
  }
  const close = async () => {
    await closeClient();
    await connection.close();
  };
  return { worker, taskQueue, client, close, deployment };
}

/** A worker per task queue (`lifeboat worker --site`, `npm start`); if one cannot be created, those already are closed. */
export async function createWorkers(o: Omit<WorkerOptions, 'taskQueue'>, taskQueues: string[]): Promise<CreatedWorker[]> {
  const created: CreatedWorker[] = [];
  try {
    for (const taskQueue of taskQueues) created.push(await createWorker({ ...o, taskQueue }));
    return created;
  } catch (err) {
    for (const c of created) await c.close();
    throw err;
  }
}

/**
 * Runs the workers until they are shut down (SIGINT/SIGTERM through the runtime). One failing worker stops the others:
 * a process that half-serves its queues would look alive and miss backups.
 */
export async function runWorkers(created: CreatedWorker[]): Promise<void> {
  await Promise.all(
    created.map((c) =>
      c.worker.run().catch((err: unknown) => {
        for (const other of created) if (other.worker.getState() === 'RUNNING') other.worker.shutdown();
        throw err;
      }),
    ),
  );
}
