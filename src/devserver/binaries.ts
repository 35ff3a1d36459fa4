import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { access } from 'node:fs/promises';
import { existsSync } from 'node:fs';

/** Where scripts/servers.sh put the real servers; the script is the one source of truth for versions and paths. */
export interface ServerBinaries {
  temporal: string;
  /** The real Temporal server (go.temporal.io/server cmd/server), its SQL schema tool and the module's schema files. */
  temporalServer: string;
  temporalSqlTool: string;
  temporalSchemaDir: string;
  /** Debian's PostgreSQL server programs (initdb, postgres, pg_isready). */
  postgresBinDir: string;
  minio: string;
  etcd: Record<EtcdLine, string>;
  kubeApiserver: string;
  kubeScheduler: string;
  kubeControllerManager: string;
  kubelet: string;
  crictl: string;
  /** The static pause binary of the sandbox's pause image. */
  pause: string;
  /** Where the sandbox's image tarballs are cached (sandbox/images.ts). */
  imagesDir: string;
}
export type EtcdLine = '3.4' | '3.5' | '3.6';

/** The checkout this code runs from: src/devserver under jest, dist/src/devserver or dist-testbed/src/devserver compiled. */
const repoRoot =
  [join(__dirname, '../..'), join(__dirname, '../../..')].find((d) => existsSync(join(d, 'scripts/servers.sh'))) ??
  join(__dirname, '../..');

export async function serverBinaries(): Promise<ServerBinaries> {
  const { stdout } = await promisify(execFile)('bash', [join(repoRoot, 'scripts/servers.sh'), '--print']);
  const env = Object.fromEntries(
    stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Record<string, string>;
  const bins: ServerBinaries = {
    temporal: env.LIFEBOAT_TEMPORAL_BIN,
    temporalServer: env.LIFEBOAT_TEMPORAL_SERVER_BIN,
    temporalSqlTool: env.LIFEBOAT_TEMPORAL_SQL_TOOL_BIN,
    temporalSchemaDir: env.LIFEBOAT_TEMPORAL_SCHEMA_DIR,
    postgresBinDir: env.LIFEBOAT_POSTGRES_BIN_DIR,
    minio: env.LIFEBOAT_MINIO_BIN,
    etcd: { '3.4': env.LIFEBOAT_ETCD34_DIR, '3.5': env.LIFEBOAT_ETCD35_DIR, '3.6': env.LIFEBOAT_ETCD36_DIR },
    kubeApiserver: env.LIFEBOAT_KUBE_APISERVER_BIN,
    kubeScheduler: env.LIFEBOAT_KUBE_SCHEDULER_BIN,
    kubeControllerManager: env.LIFEBOAT_KUBE_CONTROLLER_MANAGER_BIN,
    kubelet: env.LIFEBOAT_KUBELET_BIN,
    crictl: env.LIFEBOAT_CRICTL_BIN,
    pause: env.LIFEBOAT_PAUSE_BIN,
    imagesDir: env.LIFEBOAT_IMAGES_DIR,
  };
  return bins;
}

export async function requireBinary(path: string, what: string): Promise<string> {
  try {
    await access(path);
    return path;
  } catch {
    throw new Error(`${what} is not built at ${path}: run \`npm run servers\` (scripts/servers.sh) first`);
  }
}

export { repoRoot };
