import { Connection } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { requireBinary, serverBinaries } from '../../src/devserver/binaries';
import { GiveUp, startProcess, waitFor, type ManagedProcess } from '../../src/devserver/processes';
import { waitForFrontend } from '../../src/devserver/temporal';

const run = promisify(execFile);
const IP = '127.0.0.1';

/**
 * A real Temporal server (go.temporal.io/server, the version docker-compose.yml runs) on Debian's PostgreSQL, set up as
 * a platform team would without auto-setup: a PostgreSQL cluster of its own, the `temporal` and `temporal_visibility`
 * databases made and migrated by temporal-sql-tool from the module's schema files, the server started from a config
 * file (postgres12 for both stores), the namespaces registered with the `temporal` CLI. Everything on loopback ports
 * chosen free, in one temp folder; stop() ends both servers and removes it.
 */
export interface TemporalOnPostgres {
  /** The frontend's gRPC address. */
  address: string;
  /** PostgreSQL's port on 127.0.0.1 (user temporal). */
  postgresPort: number;
  dir: string;
  server: ManagedProcess;
  readonly postgres: ManagedProcess;
  /**
   * PostgreSQL stopped the way `pg_ctl restart` stops it by default (fast: every session ended at once, as a host
   * reboot or a failover ends them), down for `downMs`, then started again on the same data and port.
   */
  restartPostgres(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** How PostgreSQL's programs are run: it refuses to run as root, so as Debian's `postgres` user when we are root. */
function asPostgresUser(file: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
}

export async function startTemporalOnPostgres(o: { namespaces?: string[]; startTimeoutMs?: number } = {}): Promise<TemporalOnPostgres> {
  const bins = await serverBinaries();
  const [serverBin, sqlTool, cli] = await Promise.all([
    requireBinary(bins.temporalServer, 'temporal-server'),
    requireBinary(bins.temporalSqlTool, 'temporal-sql-tool'),
    requireBinary(bins.temporal, 'temporal CLI'),
    requireBinary(join(bins.temporalSchemaDir, 'postgresql/v12/temporal/versioned'), 'the Temporal PostgreSQL schema'),
    requireBinary(join(bins.postgresBinDir, 'initdb'), "PostgreSQL's initdb (Debian package postgresql)"),
  ]);
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-temporal-pg-'));
  let postgres: ManagedProcess | undefined;
  let server: ManagedProcess | undefined;
  let restartPostgres: (downMs: number) => Promise<void> = () => Promise.reject(new Error('PostgreSQL has not started'));
  const stop = async () => {
    // The server first: PostgreSQL's SIGTERM (smart shutdown) waits for its clients to leave.
    await server?.stop();
    await postgres?.stop();
    if (!process.env.LIFEBOAT_KEEP_SANDBOX) await rm(dir, { recursive: true, force: true });
  };
  try {
    // The data folder belongs to the user PostgreSQL runs as; ours stays traversable for it, and so must its parents.
    await chmod(dir, 0o711);
    if (process.getuid?.() === 0)
      await run('runuser', ['-u', 'postgres', '--', 'test', '-x', dir]).catch(() => {
        throw new Error(
          `PostgreSQL runs as the postgres user, which cannot reach ${dir}: make the folders above it traversable (chmod o+x), or set TMPDIR to a folder that is (scripts/test.sh makes its run folder 0711)`,
        );
      });
    const data = join(dir, 'pgdata');
    const password = randomBytes(16).toString('hex');
    const pwfile = join(dir, 'pgpass');
    await writeFile(pwfile, password, { mode: 0o600 });
    if (process.getuid?.() === 0) {
      const { stdout } = await run('id', ['-u', 'postgres']);
      const { stdout: gid } = await run('id', ['-g', 'postgres']);
      await mkdir(data, { mode: 0o700 });
      await chown(data, Number(stdout), Number(gid));
      await chown(pwfile, Number(stdout), Number(gid));
    }
    // A password like a real install (scram-sha-256 on TCP); no Unix socket, so nothing outside the folder is touched.
    await run(
      ...asPostgresUser(join(bins.postgresBinDir, 'initdb'), [
        '-D',
        data,
        '-U',
        'temporal',
        `--pwfile=${pwfile}`,
        '-A',
        'scram-sha-256',
        '-E',
        'UTF8',
        '--locale=C',
        '--no-sync',
      ]),
    );
    await rm(pwfile);
    const postgresPort = await freeLowPort();
    // fsync off: a test bed's database need not survive a power cut, and the 2-core machine is shared.
    const startPostgres = async (): Promise<ManagedProcess> => {
      const pg = startProcess(
        'postgres',
        ...asPostgresUser(join(bins.postgresBinDir, 'postgres'), [
          '-D',
          data,
          '-c',
          `listen_addresses=${IP}`,
          '-c',
          `port=${postgresPort}`,
          '-c',
          'unix_socket_directories=',
          '-c',
          'fsync=off',
          '-c',
          'synchronous_commit=off',
        ]),
        { logFile: join(dir, 'postgres.log') },
      );
      postgres = pg;
      await waitFor(
        `PostgreSQL on ${IP}:${postgresPort} (log: ${pg.logFile})`,
        async () => {
          if (pg.child.exitCode !== null) throw new GiveUp(`it exited with code ${pg.child.exitCode}`);
          await run(join(bins.postgresBinDir, 'pg_isready'), ['-h', IP, '-p', String(postgresPort), '-U', 'temporal']);
          return true;
        },
        60_000,
        300,
      );
      return pg;
    };
    await startPostgres();
    restartPostgres = async (downMs: number) => {
      const pg = postgres!;
      // SIGINT is PostgreSQL's fast shutdown (SIGTERM, the smart one, would wait for the server's pooled sessions).
      if (pg.child.pid !== undefined) process.kill(-pg.child.pid, 'SIGINT');
      await pg.exited;
      await new Promise((r) => setTimeout(r, downMs));
      await startPostgres();
    };

    // The documented schema setup (as temporalio/auto-setup does it): create, set up the base, migrate to the latest.
    const sql = (db: string, ...args: string[]) =>
      run(sqlTool, ['--plugin', 'postgres12', '--ep', IP, '-p', String(postgresPort), '-u', 'temporal', '--db', db, ...args], {
        env: { ...process.env, SQL_PASSWORD: password }, // not on the command line, where `ps` shows it
      });
    await Promise.all(
      [
        ['temporal', 'temporal'],
        ['temporal_visibility', 'visibility'],
      ].map(async ([db, schema]) => {
        await sql(db, 'create-database');
        await sql(db, 'setup-schema', '-v', '0.0');
        await sql(db, 'update-schema', '-d', join(bins.temporalSchemaDir, 'postgresql/v12', schema, 'versioned'));
      }),
    );

    const ports = {
      frontend: await freeLowPort(),
      frontendHttp: await freeLowPort(),
      frontendMembership: await freeLowPort(),
      history: await freeLowPort(),
      historyMembership: await freeLowPort(),
      matching: await freeLowPort(),
      matchingMembership: await freeLowPort(),
      worker: await freeLowPort(),
      workerMembership: await freeLowPort(),
    };
    const address = `${IP}:${ports.frontend}`;
    await mkdir(join(dir, 'temporal/config'), { recursive: true });
    const store = (databaseName: string, maxConns: number) => ({
      sql: {
        pluginName: 'postgres12',
        databaseName,
        connectAddr: `${IP}:${postgresPort}`,
        connectProtocol: 'tcp',
        user: 'temporal',
        password,
        maxConns,
        maxIdleConns: maxConns,
        maxConnLifetime: '1h',
      },
    });
    const service = (grpcPort: number, membershipPort: number, extra: object = {}) => ({
      rpc: { grpcPort, membershipPort, bindOnIP: IP, ...extra },
    });
    // The server's own development-postgres12.yaml, trimmed to what a single host needs.
    await writeFile(
      join(dir, 'temporal/config/development.yaml'),
      stringify({
        log: { stdout: true, level: 'warn' },
        persistence: {
          defaultStore: 'postgres-default',
          visibilityStore: 'postgres-visibility',
          numHistoryShards: 4,
          datastores: { 'postgres-default': store('temporal', 20), 'postgres-visibility': store('temporal_visibility', 5) },
        },
        global: { membership: { maxJoinDuration: '30s', broadcastAddress: IP } },
        services: {
          frontend: service(ports.frontend, ports.frontendMembership, { httpPort: ports.frontendHttp }),
          history: service(ports.history, ports.historyMembership),
          matching: service(ports.matching, ports.matchingMembership),
          worker: service(ports.worker, ports.workerMembership),
        },
        clusterMetadata: {
          enableGlobalNamespace: false,
          failoverVersionIncrement: 10,
          masterClusterName: 'active',
          currentClusterName: 'active',
          clusterInformation: { active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: address } },
        },
        dcRedirectionPolicy: { policy: 'noop' },
        dynamicConfigClient: { filepath: join(dir, 'temporal/dynamicconfig.yaml'), pollInterval: '10s' },
      }),
      { mode: 0o600 }, // it holds the database password
    );
    // What the dev server turns on that the workflows use (updates), as `temporal server start-dev` does.
    await writeFile(join(dir, 'temporal/dynamicconfig.yaml'), stringify({ 'frontend.enableUpdateWorkflowExecution': [{ value: true }] }));
    server = startProcess(
      'temporal-server',
      serverBin,
      ['--root', join(dir, 'temporal'), '--config', 'config', '--env', 'development', '--allow-no-auth', 'start'],
      { logFile: join(dir, 'temporal-server.log') },
    );
    await waitForFrontend(server, IP, ports.frontend, `temporal-server on ${address}`, o.startTimeoutMs ?? 120_000);
    for (const namespace of o.namespaces ?? ['default']) await registerNamespace(cli, address, namespace);
    return {
      address,
      postgresPort,
      dir,
      server,
      get postgres() {
        return postgres!;
      },
      restartPostgres: (downMs) => restartPostgres(downMs),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * A free loopback port below 32768. Temporal's PostgreSQL schema keeps each service's membership port in a smallint
 * column (cluster_membership.rpc_port): a port from the kernel's ephemeral range (32768-60999) makes the server exit
 * with `value "35331" is out of range for type smallint`. Platform teams use 6933-6939; the test bed picks at random.
 */
async function freeLowPort(): Promise<number> {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * 22_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, IP, () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/**
 * `temporal operator namespace create`, as an operator registers one, retried while the server's other services are
 * still joining; then waits until the frontend's namespace cache serves it (a workflow call, not a describe, which
 * reads the database).
 */
export async function registerNamespace(cli: string, address: string, namespace: string): Promise<void> {
  await waitFor(
    `namespace ${namespace} registered on ${address}`,
    async () => {
      await run(cli, ['operator', 'namespace', 'create', '--namespace', namespace, '--retention', '24h', '--address', address]).catch(
        (err: Error & { stderr?: string }) => {
          if (!/already (registered|exists)/i.test(err.stderr ?? '')) throw new Error(err.stderr?.trim() || err.message);
        },
      );
      return true;
    },
    60_000,
    1_000,
  );
  const connection = await Connection.connect({ address });
  try {
    await waitFor(
      `namespace ${namespace} served on ${address}`,
      () => connection.workflowService.listWorkflowExecutions({ namespace, pageSize: 1 }).then(() => true),
      30_000,
      500,
    );
  } finally {
    await connection.close();
  }
}
