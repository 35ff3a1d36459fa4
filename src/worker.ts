import { Runtime } from '@temporalio/worker';
import { loadConfig } from './config/load';
import { createLogger, temporalLoggerFrom } from './logging';
import { startMetricsServer } from './metrics/server';
import { createWorker } from './temporal/worker';
import { startAlertReceiver } from './alerts/receiver';
import { describeTarget, temporalTarget } from './temporal/connection';
import { connectWhenReachable } from './temporal/wait-for-server';

/**
 * The engine's worker process: validated config first (a bad file fails here, listing every problem), then the
 * Temporal runtime with our logger, then the worker until SIGINT/SIGTERM, which drain in-flight activities.
 */
export async function runWorker(configPath?: string): Promise<void> {
  const logger = createLogger('lifeboat-worker');
  const config = await loadConfig(configPath);
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
  const created = await connectWhenReachable(() => createWorker({ config, logger, target }), {
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
  const { worker, close, taskQueue, client, deployment } = created;
  // Alertmanager's webhook (LIFEBOAT_ALERTS_ADDRESS=host:port): alerts start or join each cluster's response workflow.
  const alertsAddress = process.env.LIFEBOAT_ALERTS_ADDRESS;
  const receiver = alertsAddress ? await startAlertReceiver({ config, client, taskQueue, logger, address: alertsAddress }) : undefined;
  logger.info(
    { temporal: describeTarget(target), taskQueue, ...(deployment ? { deployment } : {}), clusters: config.clusters.map((c) => c.name) },
    'worker started',
  );
  try {
    await worker.run();
  } finally {
    await receiver?.close();
    await close();
    await metricsServer?.close();
    logger.info('worker stopped');
  }
}

if (require.main === module) {
  runWorker().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
