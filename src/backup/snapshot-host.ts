import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { ClusterConfig, Config } from '../config/schema';
import { command } from '../ssh/quote';
import { RemoteCommandError, type RemoteResult } from '../ssh/run';
import { etcdctl, etcdctlWith } from '../etcd/commands';
import { findCluster } from '../config/load';
import { withClusterNode, type SessionOptions } from '../ssh/session';
import { nodeCompressCommand } from './codec';
import type { Compression } from './object-keys';

/**
 * Where a snapshot is taken, checked and read from: the control-plane node over SSH (the default), or — in direct
 * mode (`etcd.direct` in config) — the worker itself, against etcd endpoints it can reach. The backup steps are the
 * same commands either way; only where they run differs.
 */
export type SnapshotSource = 'node' | 'worker';

/** A command's or a file's bytes as a stream, with the end awaited by `done` and `close` to stop early. */
export interface ByteStream {
  stdout: Readable;
  done: Promise<unknown>;
  close(): void;
}

export interface SnapshotHost {
  readonly source: SnapshotSource;
  /** For messages: `node "cp1"` or `the worker`. */
  readonly label: string;
  readonly cluster: ClusterConfig;
  /** Work dir for this host's run folders. */
  readonly workDir: string;
  /** etcdctl with the endpoint and client certificates as this host reaches etcd. */
  etcdctl(...args: string[]): string[];
  readonly etcdutl: string;
  run(argv: readonly string[], options?: { allowFailure?: boolean }): Promise<RemoteResult>;
  /** A file's bytes as a stream. */
  readFile(path: string): Promise<ByteStream>;
  /** A file's bytes compressed where it lies (the node's zstd or gzip), as a stream; only on a node. */
  readCompressed?(path: string, codec: Compression): Promise<ByteStream>;
}

export function snapshotSourceOf(cluster: ClusterConfig): SnapshotSource {
  return cluster.etcd.direct ? 'worker' : 'node';
}

function runLocally(argv: readonly string[], allowFailure: boolean): Promise<RemoteResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 256 * 1024) stderr += d.toString('utf8');
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      // A missing command reads like a shell's "not found", so callers classify it the same way on either host.
      const result = { stdout, stderr: `${argv[0]}: ${err.code === 'ENOENT' ? 'command not found' : err.message}`, code: 127 };
      if (allowFailure) resolve(result);
      else reject(new RemoteCommandError('worker', command(argv), result));
    });
    child.on('close', (code) => {
      const result = { stdout, stderr, code };
      if (code !== 0 && !allowFailure) reject(new RemoteCommandError('worker', command(argv), result));
      else resolve(result);
    });
  });
}

/** Reads in 1 MiB blocks straight from the file: no child process, no pipe, a sixteenth of the chunks a pipe hands over. */
async function readLocalFile(path: string): Promise<ByteStream> {
  const stdout = createReadStream(path, { highWaterMark: 1024 * 1024 });
  await once(stdout, 'open'); // a missing file fails here, as `cat` on the node would
  const done = once(stdout, 'close');
  done.catch(() => undefined);
  return { stdout, done, close: () => stdout.destroy() };
}

/**
 * Runs `body` with the host the snapshot of this cluster comes from. `node` names the control-plane node for the
 * SSH case (the first node when omitted).
 */
export async function withSnapshotHost<T>(
  config: Config,
  clusterName: string,
  nodeName: string | undefined,
  source: SnapshotSource,
  body: (h: SnapshotHost) => Promise<T>,
  options: SessionOptions = {},
): Promise<T> {
  if (source === 'worker') {
    const cluster = findCluster(config, clusterName);
    const d = cluster.etcd.direct;
    if (!d) throw new Error(`cluster "${clusterName}": this backup was started in direct mode but etcd.direct is no longer in the config`);
    return body({
      source,
      label: 'the worker',
      cluster,
      workDir: d.workDir,
      etcdctl: (...args) => etcdctlWith({ ...d, endpoints: d.endpoints.join(',') }, ...args),
      etcdutl: d.etcdutl,
      run: (argv, options) => runLocally(argv, options?.allowFailure ?? false),
      readFile: (path) => readLocalFile(path),
    });
  }
  return withClusterNode(
    config,
    clusterName,
    nodeName,
    (s) =>
      body({
        source,
        label: `node "${s.node.name}"`,
        cluster: s.cluster,
        workDir: s.cluster.paths.workDir,
        etcdctl: (...args) => etcdctl(s.cluster, ...args),
        etcdutl: s.cluster.etcd.etcdutl,
        run: (argv, options) => s.run(argv, options),
        readFile: (path) => s.stream(['cat', '--', path]),
        readCompressed: (path, codec) => s.stream(nodeCompressCommand(codec, path)),
      }),
    options,
  );
}
