import { Runtime } from '@temporalio/worker';
import { loadConfig } from './config/load';
import { liveConfig } from './config/reload';
import { createLogger, temporalLoggerFrom } from './logging';
import { startMetricsServer } from './metrics/server';
import { createWorkers, runWorkers } from './temporal/worker';
import { startAlertReceiver } from './alerts/receiver';
import { describeTarget, taskQueueOf, temporalTarget } from './temporal/connection';
import { workerQueues } from './temporal/worker-sites';
import { connectWhenReachable } from './temporal/wait-for-server';
import { currentVersionOf, versionStatus, type WorkerDeployment } from './temporal/deployment';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';

/**
 * The engine's worker process: validated config first (a bad file fails here, listing every problem), then the
 * Temporal runtime with our logger, then one worker per task queue it serves (its sites', src/temporal/worker-sites.ts)
 * until SIGINT/SIGTERM, which drain in-flight activities.
 */
export async function runWorker(configPath?: string, options: { sites?: string[] } = {}): Promise<void> {
  const logger = createLogger('lifeboat-worker');
  const config = await loadConfig(configPath);
  const { taskQueues, elsewhere } = workerQueues(config, options.sites ?? []);
  // SIGHUP reads the file again (src/config/reload.ts); a change of the queues this worker polls needs a restart.
  const live = liveConfig(configPath ?? process.env.LIFEBOAT_CONFIG, config, logger, (next) => {
    let queues: string[];
    try {
      queues = workerQueues(next, options.sites ?? []).taskQueues;
    } catch (err) {
      return (err as Error).message;
    }
    return queues.join() === taskQueues.join() ? undefined : `the worker's task queues would change (${queues.join(', ')}): restart it`;
  });
  // One Prometheus endpoint at LIFEBOAT_METRICS_ADDRESS: the engine's gauges, then the runtime's (SDK, lifeboat_backups_failed).
  const metricsServer = await startMetricsServer(process.env.LIFEBOAT_METRICS_ADDRESS, logger);
  Runtime.install({
    logger: temporalLoggerFrom(logger),
    shutdownSignals: ['SIGINT', 'SIGTERM'],
    ...metricsServer?.runtimeOptions,
  });
  const target = await temporalTarget(config);
  // The runtime now owns SIGINT/SIGTERM (they drain a running worker); until there is one, they end the wait.
  const stopWaiting = new AbortController();
  const abort = () => stopWaiting.abort();
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, abort);
  const created = await connectWhenReachable(() => createWorkers({ config, live, logger, target }, taskQueues), {
    target,
    logger,
    signal: stopWaiting.signal,
  }).finally(() => {
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, abort);
  });
  if (!created) {
    await metricsServer?.close();
    logger.info('worker stopped before Temporal was reachable');
    return;
  }
  const [first] = created;
  // Alertmanager's webhook (LIFEBOAT_ALERTS_ADDRESS=host:port): alerts start or join each cluster's response workflow,
  // on the cluster's site's queue.
  const alertsAddress = process.env.LIFEBOAT_ALERTS_ADDRESS;
  const receiver = alertsAddress
    ? await startAlertReceiver({ config, live, client: first.client, taskQueue: taskQueueOf(config), logger, address: alertsAddress })
    : undefined;
  const stopWatching = live.watchHangup();
  logger.info(
    {
      temporal: describeTarget(target),
      taskQueues,
      ...(first.deployment ? { deployment: first.deployment } : {}),
      clusters: config.clusters.filter((c) => !elsewhere.includes(c.name)).map((c) => c.name),
      ...(elsewhere.length ? { otherSites: elsewhere } : {}),
    },
    'worker started',
  );
  if (first.deployment) sayVersionStatus(first.client, first.deployment, logger);
  try {
    await runWorkers(created);
  } finally {
    stopWatching();
    await receiver?.close();
    for (const c of created) await c.close();
    await metricsServer?.close();
    logger.info('worker stopped');
  }
}

/**
 * Once the worker has polled (the server knows a version only then), whether its version gets new runs: a worker of a
 * deployment without a current version would otherwise wait for work in silence.
 */
function sayVersionStatus(client: Client, d: WorkerDeployment, logger: Logger): void {
  setTimeout(() => {
    currentVersionOf(client, d.deploymentName)
      .then((current) => {
        const status = versionStatus(d, current);
        if (status) logger[status.level]({ deployment: d, current: current ?? null }, status.msg);
      })
      .catch((err: Error) => logger.warn({ err: err.message }, 'could not read the worker deployment from Temporal'));
  }, 3_000).unref();
}

if (require.main === module) {
  runWorker().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
