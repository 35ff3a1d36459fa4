import { Client, Connection } from '@temporalio/client';
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  type WorkerDeploymentOptions,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { parseConfig } from '../../src/config/load';
import type { ClusterConfig, Config } from '../../src/config/schema';
import { createWorker, workflowsPath } from '../../src/temporal/worker';
import type { TemporalTarget } from '../../src/temporal/connection';
import { testBed } from './bed';
import { dataConverter, failureConverterPath as encryptingFailureConverter, payloadConverterPath } from '../../src/temporal/data-converter';

const bundles = new Map<string, Promise<WorkflowBundleWithSourceMap>>();
/** Where test/global-setup.ts wrote this run's bundles (jest's integration project); unset elsewhere. */
const RUN_BUNDLES_ENV = 'LIFEBOAT_TEST_WORKFLOW_BUNDLES';
const bundleFileOf = (dir: string, encrypted: boolean) => join(dir, encrypted ? 'workflow-bundle-encrypted.js' : 'workflow-bundle.js');

function bundleNow(failureConverterPath?: string): Promise<WorkflowBundleWithSourceMap> {
  const logger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
  return bundleWorkflowCode({ workflowsPath, logger, payloadConverterPath, ...(failureConverterPath ? { failureConverterPath } : {}) });
}

/**
 * The run's workflow bundles, made once by jest's globalSetup before any file starts: webpack-bundling the workflows
 * costs seconds of CPU, and jest gives each test file modules of its own, so a cache in this module bundled once per
 * file (~30 files, two lanes sharing two cores). Made from the sources of this run, with the worker's payload
 * converter, as the worker's own bundles; with payload encryption, the one with the failure converter too.
 */
export async function writeRunBundles(dir: string): Promise<void> {
  await Promise.all(
    [false, true].map(async (encrypted) =>
      writeFile(bundleFileOf(dir, encrypted), (await bundleNow(encrypted ? encryptingFailureConverter : undefined)).code),
    ),
  );
  process.env[RUN_BUNDLES_ENV] = dir;
}

/** The workflows as a worker of this process runs them: the run's bundle when globalSetup made one, else bundled here. */
export function workflowBundle(failureConverterPath?: string): Promise<WorkflowBundleWithSourceMap> {
  const key = failureConverterPath ?? '';
  let bundle = bundles.get(key);
  if (!bundle) {
    const dir = process.env[RUN_BUNDLES_ENV];
    const made = failureConverterPath === undefined || failureConverterPath === encryptingFailureConverter;
    bundle =
      dir && made
        ? readFile(bundleFileOf(dir, failureConverterPath !== undefined), 'utf8').then((code) => ({ code, sourceMap: '' }))
        : bundleNow(failureConverterPath);
    bundles.set(key, bundle);
  }
  return bundle;
}

/** The SDK logs every worker state change at INFO to the console; tests keep warnings only. */
function quietRuntime(): void {
  try {
    Runtime.install({ logger: new DefaultLogger((process.env.TEST_TEMPORAL_LOG_LEVEL as 'WARN' | undefined) ?? 'WARN') });
  } catch {
    // already installed in this process (another test file)
  }
}

export interface RunningWorker {
  client: Client;
  taskQueue: string;
  config: Config;
  /** Activities still running on this worker (a dead attempt that never ends shows here, and holds up stop()). */
  inFlightActivities(): number;
  stop(): Promise<void>;
}

/** A real worker on the shared dev server, on a task queue of its own, with the given clusters configured. */
export async function startTestWorker(
  clusters: ClusterConfig[],
  extra: Partial<Record<keyof Config, unknown>> = {},
  options: { taskQueue?: string; target?: TemporalTarget } = {},
): Promise<RunningWorker> {
  // On the shared dev server unless a target says otherwise (the real server on PostgreSQL, a TLS proxy).
  const temporalAddress = options.target?.address ?? testBed().temporalAddress;
  quietRuntime();
  // A restarted worker takes over its predecessor's queue (options.taskQueue), as a redeployed worker does.
  const taskQueue = options.taskQueue ?? `test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const config = parseConfig(
    { ...extra, temporal: { ...(extra.temporal as object | undefined), address: temporalAddress, taskQueue }, clusters },
    'test config',
  );
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  // The worker's own client: the same connection options and data converter (payload encryption) as the worker.
  const { worker, close, client } = await createWorker({
    config,
    logger,
    taskQueue,
    workflowBundle: await workflowBundle(dataConverter(config)?.failureConverterPath),
    target: options.target,
  });
  const running = worker.run();
  return {
    client,
    taskQueue,
    config,
    inFlightActivities: () => worker.getStatus().numInFlightActivities,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown(); // stopping twice is not an error
      await running;
      await close();
    },
  };
}

/**
 * A worker with stub activities on the shared dev server, for workflow-logic tests: the real workflow code and
 * server, activities that do what the test scripts. `client` talks to the same server; `stop` drains the worker.
 */
export async function startStubWorker(
  taskQueue: string,
  activities: object,
  /** Another bundle (a variant of the workflows), a Worker Deployment version (test/integration/upgrade.test.ts). */
  options: { workflowBundle?: WorkflowBundleWithSourceMap; workerDeploymentOptions?: WorkerDeploymentOptions } = {},
): Promise<{ client: Client; stop(): Promise<void> }> {
  quietRuntime();
  const { temporalAddress } = testBed();
  const connection = await Connection.connect({ address: temporalAddress });
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address: temporalAddress }),
    taskQueue,
    activities,
    dataConverter: { payloadConverterPath },
    workflowBundle: options.workflowBundle ?? (await workflowBundle()),
    ...(options.workerDeploymentOptions ? { workerDeploymentOptions: options.workerDeploymentOptions } : {}),
  });
  const running = worker.run();
  return {
    client: new Client({ connection }),
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
    },
  };
}
