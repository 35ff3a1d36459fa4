import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Runtime } from '@temporalio/worker';
import { loadConfig } from './config/load';
import { startTemporalDevServer } from './devserver/temporal';
import { createLogger, temporalLoggerFrom } from './logging';
import { requireBinary, serverBinaries } from './devserver/binaries';
import { createWorkers, runWorkers } from './temporal/worker';
import { everyQueue } from './temporal/worker-sites';
import { localDevServerTarget, taskQueueOf } from './temporal/connection';
import { startAlertReceiver } from './alerts/receiver';
import { startMetricsServer } from './metrics/server';
import { startCodecServer } from './temporal/codec-server';
import { codecServerToken } from './temporal/codec-token';
import { dataDir as lifeboatDataDir } from './data-dir';
import { payloadCodec } from './temporal/data-converter';

/**
 * `npm start`: the engine on embedded defaults — a local Temporal dev server whose state survives restarts (SQLite
 * under the user's data dir) with its web UI, and the worker connected to it. For production, run `lifeboat worker`
 * against a real Temporal cluster instead.
 */
async function main(): Promise<void> {
  const logger = createLogger('lifeboat');
  const config = await loadConfig();
  const dataDir = lifeboatDataDir();
  await mkdir(dataDir, { recursive: true });
  const port = Number(process.env.LIFEBOAT_DEV_PORT ?? 7233);
  const uiPort = Number(process.env.LIFEBOAT_DEV_UI_PORT ?? port + 1000);
  const binary = await requireBinary((await serverBinaries()).temporal, 'the temporal CLI');
  // With payload encryption on, the UI shows plain payloads only through a codec server: start one next to it, on
  // loopback, the UI given its endpoint with the token in it. /encode is on: the UI's start and signal forms use it.
  const codec = payloadCodec(config);
  const ip = process.env.LIFEBOAT_DEV_IP ?? '127.0.0.1';
  const codecToken = codec ? await codecServerToken(config, { listen: '127.0.0.1', host: '127.0.0.1', dataDir }) : undefined;
  const codecServer =
    codec && codecToken
      ? await startCodecServer({
          codec,
          host: '127.0.0.1',
          port: Number(process.env.LIFEBOAT_DEV_CODEC_PORT ?? uiPort + 1),
          origins: [`http://${ip}:${uiPort}`, `http://localhost:${uiPort}`, `http://127.0.0.1:${uiPort}`],
          namespaces: ['default'],
          token: codecToken.token,
          encode: true,
        })
      : undefined;
  logger.info({ port, uiPort, dbFile: join(dataDir, 'temporal.db') }, 'starting the Temporal dev server');
  const server = await startTemporalDevServer({
    binary,
    ip,
    uiCodecEndpoint: codecServer?.endpointWithToken,
    port,
    uiPort,
    dbFile: join(dataDir, 'temporal.db'),
    logFile: join(dataDir, 'temporal.log'),
    startTimeoutMs: 120_000,
  }).catch((err: Error) => {
    throw new Error(`${err.message}\nIs another Temporal server using port ${port}? Set LIFEBOAT_DEV_PORT to use another.`);
  });
  // As `lifeboat worker` does: metrics at LIFEBOAT_METRICS_ADDRESS, Alertmanager's webhook at LIFEBOAT_ALERTS_ADDRESS.
  const metrics = await startMetricsServer(process.env.LIFEBOAT_METRICS_ADDRESS, logger);
  Runtime.install({ logger: temporalLoggerFrom(logger), shutdownSignals: ['SIGINT', 'SIGTERM'], ...metrics?.runtimeOptions });
  // Every queue the config uses, the sites' too: this one machine is the whole engine.
  const taskQueues = everyQueue(config);
  const created = await createWorkers({ config, logger, target: localDevServerTarget(server.address, taskQueueOf(config)) }, taskQueues);
  const [{ client, taskQueue }] = created;
  const alertsAddress = process.env.LIFEBOAT_ALERTS_ADDRESS;
  const receiver = alertsAddress ? await startAlertReceiver({ config, client, taskQueue, logger, address: alertsAddress }) : undefined;
  console.log(
    [
      '',
      `  lifeboat is running (${config.clusters.length} cluster${config.clusters.length === 1 ? '' : 's'} configured)`,
      `  Temporal UI:      ${server.uiUrl}`,
      `  Temporal address: ${server.address} (namespace default, task queue${taskQueues.length > 1 ? 's' : ''} ${taskQueues.join(', ')})`,
      `  State and logs:   ${dataDir}`,
      ...(codecServer
        ? [
            `  Codec server:     ${codecServer.url} (payloads encrypted with key ${config.temporal.payloadEncryption?.keyId}; ` +
              `token ${codecToken?.file ? `in ${codecToken.file}` : 'temporal.codecServer.token'})`,
          ]
        : []),
      ...(metrics ? [`  Metrics:          http://${metrics.address}/metrics`] : []),
      ...(receiver ? [`  Alert receiver:   ${receiver.url} (Alertmanager webhook, bearer alerts.token)`] : []),
      '  Stop with Ctrl-C.',
      '',
    ].join('\n'),
  );
  try {
    await runWorkers(created);
  } finally {
    await receiver?.close();
    await metrics?.close();
    for (const c of created) await c.close();
    await server.stop();
    await codecServer?.close();
    logger.info('stopped');
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
