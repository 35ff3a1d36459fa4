import { status as grpcStatus } from '@grpc/grpc-js';
import type { Client } from '@temporalio/client';
import type { WorkerDeploymentOptions } from '@temporalio/worker';
import { createHash } from 'node:crypto';
import type { Config } from '../config/schema';
import { engineVersion } from '../version';

/**
 * Worker Versioning (Temporal Worker Deployments): a worker that opts in declares a deployment name and a build id;
 * runs then stay on the version they started on (PINNED: recoverCluster, and the children it starts on its queue) or
 * move to the deployment's current version at their next workflow task (AUTO_UPGRADE: everything else). So an upgrade
 * never continues a recovery with code that would replay it differently. See docs/upgrades.md.
 */
export interface WorkerDeployment {
  deploymentName: string;
  buildId: string;
}

/**
 * The worker's deployment, or undefined when versioning is off (the default). LIFEBOAT_DEPLOYMENT_NAME and
 * LIFEBOAT_BUILD_ID win over temporal.deployment. Without a build id, it is the package version and the first 12 hex
 * of the SHA-256 of the workflow bundle the worker runs: the version names the release, the hash changes exactly when
 * the workflow code does (what a replay runs), so rebuilding the same code gives the same version and any change to
 * the workflows a new one, even within one release.
 */
export function workerDeployment(
  config: Config,
  bundleCode: string | undefined,
  env: Record<string, string | undefined> = process.env,
): WorkerDeployment | undefined {
  const deploymentName = deploymentNameOf(config, env);
  if (!deploymentName) return undefined;
  const explicit = env.LIFEBOAT_BUILD_ID || config.temporal.deployment?.buildId;
  if (explicit) {
    if (!/^[A-Za-z0-9_.+-]{1,200}$/.test(explicit))
      throw new Error(
        `${env.LIFEBOAT_BUILD_ID ? 'LIFEBOAT_BUILD_ID' : 'temporal.deployment.buildId'}: expected letters, digits, ., +, - and _, got "${explicit}"`,
      );
    return { deploymentName, buildId: explicit };
  }
  if (bundleCode === undefined)
    throw new Error(
      'temporal.deployment.buildId: required when the worker runs from source (there is no built workflow bundle to derive it from): set it, or LIFEBOAT_BUILD_ID, or run the built worker (npm run build)',
    );
  return { deploymentName, buildId: defaultBuildId(bundleCode) };
}

/** LIFEBOAT_DEPLOYMENT_NAME, else temporal.deployment.name; undefined when versioning is off. */
export function deploymentNameOf(config: Config, env: Record<string, string | undefined> = process.env): string | undefined {
  const deploymentName = env.LIFEBOAT_DEPLOYMENT_NAME || config.temporal.deployment?.name;
  if (deploymentName && !/^[A-Za-z0-9_-]{1,100}$/.test(deploymentName))
    throw new Error(
      `${env.LIFEBOAT_DEPLOYMENT_NAME ? 'LIFEBOAT_DEPLOYMENT_NAME' : 'temporal.deployment.name'}: expected letters, digits, - and _ (Temporal joins it to the build id), got "${deploymentName}"`,
    );
  return deploymentName;
}

/** The package version and the workflow bundle's hash: `1.4.0-3f2a9c1b7d4e`. */
export function defaultBuildId(bundleCode: string): string {
  return `${engineVersion()}-${createHash('sha256').update(bundleCode).digest('hex').slice(0, 12)}`;
}

/** The Worker's options: every workflow may move to a new version unless it is defined PINNED (recoverCluster). */
export function deploymentOptions(d: WorkerDeployment): WorkerDeploymentOptions {
  return {
    useWorkerVersioning: true,
    version: { deploymentName: d.deploymentName, buildId: d.buildId },
    defaultVersioningBehavior: 'AUTO_UPGRADE',
  };
}

/** `deployment:buildId`, as the server (1.29) writes a version into the search attribute TemporalWorkerDeploymentVersion. */
export function versionName(d: WorkerDeployment): string {
  return `${d.deploymentName}:${d.buildId}`;
}

/**
 * Makes a version the deployment's current one: new runs, and AUTO_UPGRADE runs at their next workflow task, go to
 * it; runs PINNED to another version stay there. The version must have polled (its worker started) first.
 */
export async function setCurrentVersion(client: Client, d: WorkerDeployment, identity = 'lifeboat'): Promise<void> {
  await client.workflowService.setWorkerDeploymentCurrentVersion({
    namespace: client.options.namespace,
    deploymentName: d.deploymentName,
    buildId: d.buildId,
    identity,
  });
}

/** How many open runs are pinned to a version: 0 means it is drained and its workers can be stopped. */
export async function openRunsPinnedTo(client: Client, d: WorkerDeployment): Promise<number> {
  const { count } = await client.workflow.count(
    `TemporalWorkerDeploymentVersion = '${versionName(d)}' AND TemporalWorkflowVersioningBehavior = 'Pinned' AND ExecutionStatus = 'Running'`,
  );
  return count;
}

/**
 * The build id of the deployment's current version, or undefined when it has none (or the server does not know the
 * deployment yet): new runs then go to workers without versioning.
 */
export async function currentVersionOf(client: Client, deploymentName: string): Promise<string | undefined> {
  const r = await client.workflowService
    .describeWorkerDeployment({ namespace: client.options.namespace, deploymentName })
    .catch((err: { code?: number }) => {
      if (err.code === grpcStatus.NOT_FOUND) return undefined; // no worker of it has polled yet
      throw err;
    });
  return r?.workerDeploymentInfo?.routingConfig?.currentDeploymentVersion?.buildId || undefined;
}

/**
 * What a worker says once it polls, when its version will get no new runs. Without a current version, a versioned
 * worker takes nothing: the first rollout's silent wedge, so it is a warning with the command that ends it. Another
 * current version is step 1 of a rollout (docs/upgrades.md): said, with the command of step 2.
 */
export function versionStatus(d: WorkerDeployment, current: string | undefined): { level: 'info' | 'warn'; msg: string } | undefined {
  const make = `\`lifeboat temporal set-current-version ${d.buildId}\``;
  if (current === d.buildId) return undefined;
  if (current === undefined)
    return {
      level: 'warn',
      msg: `deployment ${d.deploymentName} has no current version, so this worker (version ${d.buildId}) gets no runs: new runs wait for a worker without versioning. Make this version current with ${make}`,
    };
  return {
    level: 'info',
    msg: `version ${d.buildId} is not the current one of deployment ${d.deploymentName} (${current} is): this worker runs only what is pinned to it until ${make}`,
  };
}
