import { S3Client, CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, startProcess, waitFor, type ManagedProcess } from '../src/devserver/processes';

export interface MinioServer {
  endpoint: string;
  consoleUrl: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  process: ManagedProcess;
  client(): S3Client;
  createBucket(name: string, options?: { objectLock?: boolean }): Promise<void>;
  stop(): Promise<void>;
  /** Starts the same server again on the same port and data (after stop()), e.g. to test an outage. */
  restart(): Promise<void>;
}

/** A real MinIO on loopback with a throwaway data dir; credentials are random per run. */
export async function startMinio(binary: string, dir: string): Promise<MinioServer> {
  const port = await freePort();
  const consolePort = await freePort();
  const dataDir = join(dir, 'data');
  await mkdir(dataDir, { recursive: true });
  const accessKeyId = `lifeboat${Math.random().toString(36).slice(2, 10)}`;
  const secretAccessKey = `${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  const endpoint = `http://127.0.0.1:${port}`;
  const launch = async () => {
    const proc = startProcess(
      'minio',
      binary,
      ['server', '--quiet', '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, dataDir],
      {
        logFile: join(dir, 'minio.log'),
        env: {
          ...process.env,
          MINIO_ROOT_USER: accessKeyId,
          MINIO_ROOT_PASSWORD: secretAccessKey,
          MINIO_BROWSER: 'on',
          MINIO_UPDATE: 'off',
        },
      },
    );
    await waitFor(
      `MinIO on ${endpoint} (log: ${join(dir, 'minio.log')})`,
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`it exited with code ${proc.child.exitCode}`);
        const res = await fetch(`${endpoint}/minio/health/ready`);
        return res.ok;
      },
      60_000,
    );
    return proc;
  };
  let proc = await launch();
  const server: MinioServer = {
    endpoint,
    consoleUrl: `http://127.0.0.1:${consolePort}`,
    region: 'us-east-1',
    accessKeyId,
    secretAccessKey,
    get process() {
      return proc;
    },
    // Timeouts as the engine's own clients have them: a request on a socket to a MinIO that was stopped must fail, not wait.
    client: () =>
      new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId, secretAccessKey },
        requestHandler: { connectionTimeout: 10_000, requestTimeout: 60_000 },
      }),
    async createBucket(name, options = {}) {
      const s3 = server.client();
      try {
        await s3.send(new HeadBucketCommand({ Bucket: name }));
      } catch {
        await s3.send(new CreateBucketCommand({ Bucket: name, ObjectLockEnabledForBucket: options.objectLock }));
      } finally {
        s3.destroy();
      }
    },
    stop: () => proc.stop(),
    async restart() {
      await proc.stop();
      proc = await launch();
    },
  };
  return server;
}
