import { CreateBucketCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { chmod, chown, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from '../../src/devserver/processes';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { etcdctlArgs } from '../../sandbox/control-plane';
import { keyFile, withBackup } from '../support/backups';
import { runCli } from '../support/cli';
import type { BackupClusterResult } from '../../workflows/backup-cluster';
import { backupCluster } from '../../workflows';

const run = promisify(execFile);
const repoRoot = resolve(__dirname, '..', '..');
const BUCKET = 'lifeboat-compose';
const CLUSTER = 'composed';
/** The uid the compose worker runs as (docker-compose.yml: LIFEBOAT_UID, default 1000): it must own the key files. */
const WORKER_UID = 1000;
/** The compose MinIO's throwaway defaults (docker-compose.yml), which the worker's AWS_* variables default to as well. */
const MINIO_USER = 'minioadmin';

/**
 * The compose stack for real, as `npm run compose:up` runs it (not in `npm test`: see docs/compose.md): the
 * published docker-compose.yml with docker-compose.local.yml on the images scripts/compose-images.sh built here,
 * brought up by Debian's docker-compose on Debian's Docker engine, next to a sandbox cluster in network namespaces.
 * Every container is reached the way a user reaches it: the published ports from the host, `docker-compose exec`, and
 * the worker's config folder. Its own project name, host ports and volumes, removed at the end.
 */
describe('the compose stack on a real Docker engine', () => {
  const project = `lifeboat-proof-${process.pid}`;
  let dir: string;
  let cluster: SandboxCluster;
  let ports: Record<'temporal' | 'ui' | 'minio' | 'minioConsole' | 'metrics' | 'alerts', number>;
  let env: NodeJS.ProcessEnv;
  let s3: S3Client;
  let connection: Connection | undefined;

  const compose = (...args: string[]) =>
    run('docker-compose', ['-p', project, '-f', 'docker-compose.yml', '-f', 'docker-compose.local.yml', ...args], {
      cwd: repoRoot,
      env,
      maxBuffer: 64 << 20,
    });
  const container = async (service: string) => (await compose('ps', '-q', service)).stdout.trim();
  const inspect = async (service: string, format: string) =>
    (await run('docker', ['inspect', '-f', format, await container(service)])).stdout.trim();
  const temporalAddress = () => `127.0.0.1:${ports.temporal}`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-compose-'));
    ports = {
      temporal: await freePort(),
      ui: await freePort(),
      minio: await freePort(),
      minioConsole: await freePort(),
      metrics: await freePort(),
      alerts: await freePort(),
    };
    const config = join(dir, 'config');
    // ${HOME}/.ssh is mounted into the worker: an empty one of our own, so the host's HOME is left alone.
    await mkdir(join(dir, 'home/.ssh'), { recursive: true });
    env = {
      PATH: process.env.PATH,
      HOME: join(dir, 'home'),
      LIFEBOAT_CONFIG_DIR: config,
      LIFEBOAT_TEMPORAL_PORT: String(ports.temporal),
      LIFEBOAT_UI_PORT: String(ports.ui),
      LIFEBOAT_MINIO_PORT: String(ports.minio),
      LIFEBOAT_MINIO_CONSOLE_PORT: String(ports.minioConsole),
      LIFEBOAT_METRICS_PORT: String(ports.metrics),
      LIFEBOAT_ALERTS_PORT: String(ports.alerts),
    };

    // The cluster as the composed worker sees it: MinIO by its service name, files under /etc/lifeboat.
    cluster = await createSandboxCluster({
      name: CLUSTER,
      etcdLine: '3.6',
      withApiserver: false,
      storage: { bucket: BUCKET, prefix: 'lifeboat', region: 'us-east-1', endpoint: 'http://minio:9000', forcePathStyle: true },
    });
    for (let i = 0; i < 3; i++)
      await cluster.controlPlane.exec(['etcdctl', ...etcdctlArgs(), 'put', `/registry/configmaps/default/cm-${i}`, `v${i}`]);
    for (const sub of ['etcd', 'ssh', 'keys']) await mkdir(join(config, sub), { recursive: true });
    for (const f of ['ca.crt', 'healthcheck-client.crt', 'healthcheck-client.key'])
      await copyFile(cluster.controlPlane.path(`/etc/kubernetes/pki/etcd/${f}`), join(config, 'etcd', f));
    await copyFile(cluster.sshKeyFile, join(config, 'ssh/id'));
    await copyFile((await keyFile()).path, join(config, 'keys/k1.key'));
    const backup = withBackup(cluster, { encryptionKey: 'k1', compression: 'none' });
    const clusterConfig = {
      ...backup,
      nodes: backup.nodes.map((n) => ({ ...n, privateKey: { file: '/etc/lifeboat/ssh/id' } })),
      // Direct mode: the worker's own etcdctl (from the etcd image) streams the snapshot over the Docker network.
      etcd: {
        ...backup.etcd,
        direct: {
          endpoints: [`https://${cluster.controlPlane.ip}:2379`],
          caFile: '/etc/lifeboat/etcd/ca.crt',
          certFile: '/etc/lifeboat/etcd/healthcheck-client.crt',
          keyFile: '/etc/lifeboat/etcd/healthcheck-client.key',
          etcdctl: '/usr/local/bin/etcdctl',
          etcdutl: '/usr/local/bin/etcdutl',
        },
      },
    };
    await writeFile(
      join(config, 'config.yaml'),
      JSON.stringify({ encryptionKeys: { k1: { file: '/etc/lifeboat/keys/k1.key' } }, clusters: [clusterConfig] }, null, 2),
    );
    // Keys stay 0600, owned by the worker's uid, as docs/production.md tells users.
    for (const f of [
      '',
      'etcd',
      'ssh',
      'keys',
      'config.yaml',
      'etcd/ca.crt',
      'etcd/healthcheck-client.crt',
      'etcd/healthcheck-client.key',
      'ssh/id',
      'keys/k1.key',
    ])
      await chown(join(config, f), WORKER_UID, WORKER_UID);
    for (const f of ['etcd/healthcheck-client.key', 'ssh/id', 'keys/k1.key']) await chmod(join(config, f), 0o600);

    await compose('up', '-d');
    await waitFor(
      'postgresql, temporal and minio healthy, the worker running',
      async () => {
        const states = await Promise.all(
          ['postgresql', 'temporal', 'minio'].map(async (s) => `${s}: ${await inspect(s, '{{.State.Health.Status}}')}`),
        );
        states.push(`worker: ${await inspect('worker', '{{.State.Status}}')}`);
        if (states.every((s) => /: (healthy|running)$/.test(s))) return true;
        throw new Error(states.join(', '));
      },
      240_000,
      1_000,
    ).catch(async (err: Error) => {
      const { stdout } = await compose('logs', '--no-color', '--tail=30').catch(() => ({ stdout: '' }));
      throw new Error(`${err.message}\n${stdout}`);
    });
    s3 = new S3Client({
      endpoint: `http://127.0.0.1:${ports.minio}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: MINIO_USER, secretAccessKey: MINIO_USER },
    });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  }, 600_000);

  afterAll(async () => {
    await connection?.close();
    s3?.destroy();
    if (env) {
      if (process.env.LIFEBOAT_KEEP_SANDBOX)
        await writeFile(join(dir, 'compose.log'), (await compose('logs', '--no-color').catch(() => ({ stdout: '' }))).stdout);
      await compose('down', '-v', '--remove-orphans').catch((err: Error) => console.error(`docker-compose down: ${err.message}`));
    }
    await cluster?.destroy();
    if (dir && !process.env.LIFEBOAT_KEEP_SANDBOX) await rm(dir, { recursive: true, force: true });
  }, 180_000);

  it('the worker registered the search attributes before it started: `lifeboat temporal check` passes on the composed server', async () => {
    const check = await waitFor(
      'lifeboat temporal check to pass against the composed Temporal',
      async () => {
        const r = await runCli(['temporal', 'check'], { env: { TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_NAMESPACE: 'default' } });
        if (r.code === 0) return r;
        throw new Error(r.stdout + r.stderr);
      },
      60_000,
      1_000,
    );
    expect(check.stdout).toMatch(/^server: +Temporal 1\.29\.1$/m);
    expect(check.stdout).toMatch(/search attributes: 3\/3 present/);
    const { stdout } = await compose('logs', '--no-color', 'worker');
    expect(stdout).toMatch(/worker started/);
  });

  it('a backup by the composed worker lands in the composed MinIO; the Temporal CLI and the UI find it', async () => {
    // The host still reaches the sandbox node over its veth with dockerd's iptables rules in place (FORWARD policy DROP).
    const etcd = cluster.binaries.etcd['3.6'];
    const pki = join(dir, 'config/etcd');
    await run(join(etcd, 'etcdctl'), [
      `--endpoints=https://${cluster.controlPlane.ip}:2379`,
      `--cacert=${pki}/ca.crt`,
      `--cert=${pki}/healthcheck-client.crt`,
      `--key=${pki}/healthcheck-client.key`,
      'endpoint',
      'health',
    ]);

    connection = await Connection.connect({ address: temporalAddress() });
    const client = new Client({ connection, namespace: 'default' });
    const workflowId = `backup-${CLUSTER}-${Date.now()}`;
    const result: BackupClusterResult = await client.workflow.execute(backupCluster, {
      taskQueue: 'lifeboat',
      workflowId,
      args: [{ cluster: CLUSTER }],
    });
    expect(result.manifestKey).toMatch(/\.json$/);
    // In the composed MinIO, read from the host through its published port.
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: result.manifestKey }));
    expect(head.ContentLength).toBeGreaterThan(0);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'lifeboat/' }));
    expect((listed.Contents ?? []).length).toBeGreaterThan(1); // the manifest and the data it names

    const query = `LifeboatCluster = "${CLUSTER}" AND ExecutionStatus = "Completed"`;
    // The temporal CLI inside the temporal container, as an operator runs it there.
    const cli = await waitFor(
      'the backup in `temporal workflow list` (SQL visibility is written asynchronously)',
      async () => {
        const { stdout } = await compose(
          'exec',
          '-T',
          'temporal',
          'temporal',
          'workflow',
          'list',
          '--address',
          'temporal:7233',
          '--query',
          query,
          '-o',
          'json',
        );
        return stdout.includes(workflowId) ? stdout : undefined;
      },
      30_000,
      1_000,
    );
    expect(cli).toContain('backupCluster');
    // The UI server's API, what its workflow list page calls, through its published port.
    const ui = (await (
      await fetch(`http://127.0.0.1:${ports.ui}/api/v1/namespaces/default/workflows?query=${encodeURIComponent(query)}`)
    ).json()) as { executions?: { execution?: { workflowId?: string } }[] };
    expect((ui.executions ?? []).map((e) => e.execution?.workflowId)).toContain(workflowId);
  });

  it('`docker-compose stop` drains the worker: it stops polling, finishes, and exits 0', async () => {
    const id = await container('worker');
    await compose('stop', 'worker');
    expect((await run('docker', ['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', id])).stdout.trim()).toBe('exited 0');
    const { stdout } = await run('docker', ['logs', id]);
    const states = [...stdout.matchAll(/"state":"([A-Z]+)","msg":"Worker state changed"/g)].map((m) => m[1]);
    expect(states.slice(-4)).toEqual(['STOPPING', 'DRAINING', 'DRAINED', 'STOPPED']);
    expect(stdout).toMatch(/"msg":"worker stopped"/);
  });
});
