import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { S3Client } from '@aws-sdk/client-s3';
import { readManifest } from '../../src/backup/catalog';
import { readStoredObject } from '../../src/backup/read-object';
import { freePort, startProcess, waitFor } from '../../src/devserver/processes';
import { createEtcdClient, unaryCall, type EtcdClient } from '../../src/etcd/grpc/client';
import type { RangeResponse } from '../../src/etcd/grpc/proto';

const run = promisify(execFile);

/** One key as etcd holds it: what "exact" compares (value, create and mod revision, version, lease). */
export interface KeyState {
  key: string;
  value: string;
  createRevision: string;
  modRevision: string;
  version: string;
  lease: string;
}

/** Every key of the keyspace at a revision (the newest when omitted), in key order. */
export async function keyspaceAt(client: EtcdClient, revision?: string): Promise<KeyState[]> {
  const res = await unaryCall<RangeResponse>(client, 'Range', (md, o, cb) =>
    client.kv.Range({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]), ...(revision ? { revision } : {}) }, md, o, cb),
  );
  return res.kvs.map((kv) => ({
    key: kv.key.toString('latin1'),
    value: kv.value.toString('base64'),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  }));
}

/**
 * A stored backup's snapshot restored (by etcd's own etcdutl, which checks its SHA-256 trailer) into a plain etcd on
 * loopback, for reading back exactly what a recovery would restore.
 */
export async function restoreStoredSnapshot(
  s3: S3Client,
  bucket: string,
  manifestKey: string,
  key: Buffer,
  etcdBin: string,
): Promise<{ client: EtcdClient; revision: string; stop(): Promise<void> }> {
  const manifest = await readManifest(s3, bucket, manifestKey);
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-pitr-read-'));
  const file = join(dir, 'snapshot.db');
  await readStoredObject(s3, bucket, manifest.snapshot, () => key, createWriteStream(file));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const peer = `http://127.0.0.1:${peerPort}`;
  const member = ['--name', 'read', '--initial-cluster', `read=${peer}`, '--initial-advertise-peer-urls', peer];
  await run(join(etcdBin, 'etcdutl'), ['snapshot', 'restore', file, '--data-dir', join(dir, 'data'), ...member]);
  const proc = startProcess(
    'etcd-pitr-read',
    join(etcdBin, 'etcd'),
    [
      '--data-dir',
      join(dir, 'data'),
      ...member,
      '--listen-peer-urls',
      peer,
      '--listen-client-urls',
      `http://127.0.0.1:${clientPort}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${clientPort}`,
    ],
    { logFile: join(dir, 'etcd.log') },
  );
  await waitFor(
    'the restored etcd',
    () =>
      fetch(`http://127.0.0.1:${clientPort}/health`)
        .then((r) => r.ok)
        .catch(() => false),
    30_000,
  );
  const client = createEtcdClient({ endpoint: `127.0.0.1:${clientPort}`, tls: 'loopback-plaintext' });
  return {
    client,
    revision: manifest.etcd.revision,
    async stop() {
      client.close();
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
