import { Runtime } from '@temporalio/worker';
import { loadConfig } from './config/load';
import { createLogger, temporalLoggerFrom } from './logging';
import { createWorker } from './temporal/worker';
import { temporalTarget } from './temporal/connection';

/**
 * The engine's worker process: validated config first (a bad file fails here, listing every problem), then the
 * Temporal runtime with our logger, then the worker until SIGINT/SIGTERM, which drain in-flight activities.
 */
export async function runWorker(configPath?: string): Promise<void> {
  const logger = createLogger('lifeboat-worker');
  const config = await loadConfig(configPath);
  // Prometheus metrics (SDK and engine: lifeboat_backups_failed{cluster,step}, ...) when LIFEBOAT_METRICS_ADDRESS is set.
  const metrics = process.env.LIFEBOAT_METRICS_ADDRESS;
  Runtime.install({
    logger: temporalLoggerFrom(logger),
    shutdownSignals: ['SIGINT', 'SIGTERM'],
    ...(metrics ? { telemetryOptions: { metrics: { prometheus: { bindAddress: metrics } } } } : {}),
  });
  const target = await temporalTarget(config);
  const { worker, close, taskQueue } = await createWorker({ config, logger });
  logger.info(
    { address: target.address, namespace: target.namespace, taskQueue, clusters: config.clusters.map((c) => c.name) },
    'worker started',
  );
  try {
    await worker.run();
  } finally {
    await close();
    logger.info('worker stopped');
  }
}

if (require.main === module) {
  runWorker().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
