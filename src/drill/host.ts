import { execFile, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { access, mkdir, readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { cmdlineOf, freePort, removeScratch, startThrowaway, sweepStale } from './processes';
import { freeBytes } from './space';

/** A command's end on the drill host. */
export interface HostResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A file (or `tar -x`) on the drill host fed from a stream: write to `sink`, then await `done`; `abort` on failure. */
export interface HostSink {
  sink: Writable;
  done: Promise<void>;
  abort(): void;
}

/**
 * Where a drill runs: the worker itself, or a drill node over SSH (src/drill/ssh-host.ts). The drill's logic
 * (activities/drill/run-drill.ts) is written once against this; each implementation keeps the same bookkeeping: every
 * throwaway server runs detached in its own session with its pid in <scratch>/pids, and is signalled only while its
 * command line names the scratch dir.
 */
export interface DrillHost {
  /** For the report: "worker" or "<node> (ssh)". */
  readonly label: string;
  /** For messages: "the worker" or "drill node <name>". */
  readonly where: string;
  present(path: string): Promise<boolean>;
  /** Runs a command to its end; its output is buffered (small outputs only). A non-zero exit is returned. */
  run(argv: readonly string[], env?: Record<string, string>): Promise<HostResult>;
  /** Runs a command and hands each line of its stdout to `onLine` as it comes (listings too large to buffer). */
  lines(
    argv: readonly string[],
    env: Record<string, string>,
    onLine: (line: string) => void,
  ): Promise<{ code: number | null; stderr: string }>;
  /** A private folder (0700), with its parents. */
  mkdir(dir: string): Promise<void>;
  /** A new private file (0600) written from a stream. */
  writeFile(path: string): Promise<HostSink>;
  /** `tar -x` into a folder, fed from a stream. */
  untar(dir: string): Promise<HostSink>;
  /** A small file's text; '' when it cannot be read. */
  readText(path: string): Promise<string>;
  /** Starts a throwaway server detached, in the scratch dir, its output in <scratch>/<name>.log; records its pid. */
  start(scratch: string, name: string, file: string, args: readonly string[]): Promise<number>;
  /** True while the pid is still a process of this scratch dir. */
  running(scratch: string, pid: number): Promise<boolean>;
  /** Stops what the scratch dir recorded (only its own processes), then removes the dir; returns the pids stopped. */
  removeScratch(scratch: string): Promise<number[]>;
  /** Run dirs under the root older than `olderThanMs`, removed with their processes. */
  sweepStale(root: string, olderThanMs: number): Promise<string[]>;
  freeBytes(dir: string): Promise<number>;
  /** A loopback port nobody uses on the drill host right now. */
  freePort(): Promise<number>;
  /** host:port on the worker that reaches 127.0.0.1:<port> on the drill host. */
  reach(port: number): Promise<string>;
}

function untarLocal(dir: string): HostSink {
  const child = spawn('tar', ['-x', '-f', '-', '-C', dir], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar -x exited ${code}: ${stderr.trim()}`))));
  });
  done.catch(() => undefined);
  return { sink: child.stdin, done, abort: () => child.kill('SIGKILL') };
}

/** The worker as the drill host: its own files and processes (src/drill/processes.ts). */
export const workerHost: DrillHost = {
  label: 'worker',
  where: 'the worker',
  present: (path) =>
    access(path).then(
      () => true,
      () => false,
    ),
  run: (argv, env = {}) =>
    new Promise((resolve, reject) => {
      execFile(argv[0], argv.slice(1), { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr });
        // A number: the command ran and exited so; a string (ENOENT, ...): it could not run.
        if (typeof err.code === 'number') return resolve({ code: err.code, stdout, stderr });
        reject(new Error(`${argv[0]}: ${err.message}`, { cause: err }));
      });
    }),
  lines: (argv, env, onLine) =>
    new Promise((resolve, reject) => {
      const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      createInterface({ input: child.stdout }).on('line', onLine);
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, stderr }));
    }),
  mkdir: async (dir) => void (await mkdir(dir, { recursive: true, mode: 0o700 })),
  writeFile: (path) => {
    const sink = createWriteStream(path, { mode: 0o600 });
    const done = new Promise<void>((resolve, reject) => {
      sink.once('close', resolve);
      sink.once('error', reject);
    });
    done.catch(() => undefined);
    return Promise.resolve({ sink, done, abort: () => sink.destroy() });
  },
  untar: (dir) => Promise.resolve(untarLocal(dir)),
  readText: (path) => readFile(path, 'utf8').catch(() => ''),
  start: (scratch, name, file, args) => startThrowaway(scratch, name, file, [...args]),
  running: async (scratch, pid) => (await cmdlineOf(pid))?.includes(scratch) ?? false,
  removeScratch: (scratch) => removeScratch(scratch),
  sweepStale: (root, olderThanMs) => sweepStale(root, olderThanMs),
  freeBytes: (dir) => freeBytes(dir),
  freePort: () => freePort(),
  reach: (port) => Promise.resolve(`127.0.0.1:${port}`),
};
