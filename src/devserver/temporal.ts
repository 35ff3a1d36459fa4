import { Connection } from '@temporalio/client';
import { connect } from 'node:net';
import { GiveUp, startProcess, waitFor, type ManagedProcess } from './processes';
import { DEV_SERVER_SEARCH_ATTRIBUTES } from '../temporal/search-attributes';

export interface DevServerOptions {
  binary: string;
  ip?: string;
  port: number;
  /** Omit for a headless server (tests). */
  uiPort?: number;
  /** SQLite file that keeps workflows across restarts; in-memory without it. */
  dbFile?: string;
  logFile: string;
  startTimeoutMs?: number;
  /** The UI decodes payloads through this codec server (when payload encryption is on). */
  uiCodecEndpoint?: string;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port }, () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts `temporal server start-dev` from the locally built CLI. The SDK's own launcher polls for only a few seconds,
 * too little on a loaded 2-core machine, and would try to download the binary; this waits for a real health check.
 */
export async function startTemporalDevServer(o: DevServerOptions): Promise<DevServer> {
  const ip = o.ip ?? '127.0.0.1';
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(o.port), '--log-level', 'warn'];
  // The workflows set these on themselves; an unregistered one would fail their first workflow task.
  for (const sa of DEV_SERVER_SEARCH_ATTRIBUTES) args.push('--search-attribute', sa);
  args.push('--dynamic-config-value', 'frontend.enableUpdateWorkflowExecution=true');
  if (o.uiPort !== undefined) args.push('--ui-port', String(o.uiPort));
  else args.push('--headless');
  if (o.uiCodecEndpoint) args.push('--ui-codec-endpoint', o.uiCodecEndpoint);
  if (o.dbFile) args.push('--db-filename', o.dbFile);
  const proc = startProcess('temporal', o.binary, args, { logFile: o.logFile });
  const address = `${ip}:${o.port}`;
  await waitForFrontend(proc, ip, o.port, `the Temporal dev server on ${address}`, o.startTimeoutMs ?? 60_000);
  return {
    address,
    uiUrl: o.uiPort !== undefined ? `http://${ip}:${o.uiPort}` : undefined,
    process: proc,
    stop: () => proc.stop(),
  };
}

/**
 * Waits until the frontend on ip:port answers gRPC health checks as SERVING; stops the process and throws (naming its
 * log) if it exits or the time runs out. For the dev server and the real server alike.
 */
export async function waitForFrontend(proc: ManagedProcess, ip: string, port: number, what: string, timeoutMs: number): Promise<void> {
  const address = `${ip}:${port}`;
  try {
    await waitFor(
      `${what} (log: ${proc.logFile})`,
      async () => {
        if (proc.child.exitCode !== null) throw new GiveUp(`it exited with code ${proc.child.exitCode}`);
        if (!(await portOpen(ip, port))) return false;
        const connection = await Connection.connect({ address, connectTimeout: 2_000 });
        try {
          const { status } = await connection.healthService.check({});
          return Number(status) === 1; // grpc.health.v1 SERVING
        } finally {
          await connection.close();
        }
      },
      timeoutMs,
      300,
    );
  } catch (err) {
    await proc.stop();
    throw err;
  }
}
