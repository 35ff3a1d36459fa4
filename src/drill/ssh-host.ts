import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { NodeSession } from '../ssh/session';
import type { DrillHost, HostSink } from './host';

/*
 * The drill host's own work as fixed shell programs: whatever comes from config or the run (paths, arguments) reaches
 * them as positional parameters ("$1", "$@"), quoted by the session (src/ssh/quote.ts), never pasted into the code.
 */

/** Starts "$@" in its own session (setsid), detached from the SSH channel, and records its pid before printing it. */
const START = `scratch=$1; name=$2; shift 2
cd "$scratch" || exit 1
setsid "$@" </dev/null >>"$scratch/$name.log" 2>&1 &
pid=$!
echo "$pid" >>"$scratch/pids" || exit 1
echo "$pid"`;

/** Exit 0 while pid $2 is a process whose command line names the scratch dir $1. */
const RUNNING = `tr '\\0' ' ' 2>/dev/null <"/proc/$2/cmdline" | grep -qF -- "$1"`;

/**
 * The processes recorded in <scratch>/pids that still name the scratch dir: SIGTERM to each one's group and itself,
 * SIGKILL after 5 s, then the dir is removed. Prints the pids it stopped. A recycled pid of some other program is not
 * signalled (its command line does not name the dir).
 */
const REMOVE_SCRATCH = `scratch=$1
case $scratch in /?*/?*) ;; *) echo "refusing to remove $scratch" >&2; exit 2 ;; esac
ours() { tr '\\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "$scratch"; }
found=""
if [ -f "$scratch/pids" ]; then
  for pid in $(cat "$scratch/pids"); do
    case $pid in ''|*[!0-9]*) continue ;; esac
    ours "$pid" && found="$found $pid"
  done
fi
live() { for p in $found; do ours "$p" && return 0; done; return 1; }
if [ -n "$found" ]; then
  for p in $found; do kill -s TERM -- "-$p" 2>/dev/null; kill -s TERM "$p" 2>/dev/null; done
  i=0; while live && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  if live; then for p in $found; do kill -s KILL -- "-$p" 2>/dev/null; kill -s KILL "$p" 2>/dev/null; done; fi
  i=0; while live && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  if live; then echo "processes of $scratch still running after SIGKILL:$found" >&2; exit 1; fi
fi
rm -rf -- "$scratch" || exit 1
echo $found`;

/** `tar -x` into $1. */
const UNTAR = `exec tar -x -f - -C "$1"`;
/** A new file $1 (0600) from stdin. */
const WRITE = `umask 077 && exec cat >"$1"`;
/** Run dirs directly under $1 not modified for $2 minutes. */
const STALE = `[ -d "$1" ] || exit 0; exec find "$1" -mindepth 1 -maxdepth 1 -type d -mmin "+$2"`;

const sh = (script: string, ...args: string[]) => ['sh', '-c', script, 'lifeboat-drill', ...args];
const withEnv = (argv: readonly string[], env: Record<string, string> = {}) =>
  Object.keys(env).length ? ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv] : [...argv];

/** Local TCP ports in use on the host (any state), from /proc/net/tcp{,6}. */
export function portsInUse(procNetTcp: string): Set<number> {
  const used = new Set<number>();
  for (const line of procNetTcp.split('\n')) {
    const m = /^\s*\d+:\s+[0-9A-Fa-f]+:([0-9A-Fa-f]{4})\s/.exec(line);
    if (m) used.add(parseInt(m[1], 16));
  }
  return used;
}

/** A drill node over one SSH session: the same work as the worker's (src/drill/host.ts), done there. */
export function sshDrillHost(s: NodeSession): DrillHost {
  const name = s.node.name;
  const failed = (what: string, r: { code: number | null; stderr: string; stdout: string }) =>
    new Error(
      `on drill node "${name}": ${what} exited ${r.code}: ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ')}`,
    );
  const sinkOf = async (argv: string[]): Promise<HostSink> => {
    const stream = await s.stream(argv, 'to-node');
    const done = stream.done.then(() => undefined);
    done.catch(() => undefined);
    return { sink: stream.stdin, done, abort: () => stream.close() };
  };
  const forwards = new Map<number, string>();
  const handedOut = new Set<number>();
  const host: DrillHost = {
    label: `${name} (ssh)`,
    where: `drill node "${name}"`,
    present: (path) => s.exists(path),
    run: (argv, env) => s.run(withEnv(argv, env), { allowFailure: true }),
    lines: async (argv, env, onLine) => {
      const stream = await s.stream(withEnv(argv, env), 'from-node');
      const decoder = new StringDecoder('utf8');
      let rest = '';
      await new Promise<void>((resolve, reject) => {
        stream.stdout.pipe(
          new Writable({
            write(chunk: Buffer, _enc, cb) {
              const parts = (rest + decoder.write(chunk)).split('\n');
              rest = parts.pop() ?? '';
              for (const l of parts) onLine(l);
              cb();
            },
            final(cb) {
              if (rest) onLine(rest);
              cb();
              resolve();
            },
          }),
        );
        stream.stdout.once('error', reject);
      });
      return stream.done.then(
        () => ({ code: 0, stderr: '' }),
        (err: { result?: { code: number | null; stderr: string } }) => {
          if (!err.result) throw err;
          return { code: err.result.code, stderr: err.result.stderr };
        },
      );
    },
    mkdir: async (dir) => void (await s.run(['mkdir', '-p', '-m', '700', '--', dir])),
    writeFile: (path) => sinkOf(sh(WRITE, path)),
    untar: (dir) => sinkOf(sh(UNTAR, dir)),
    readText: async (path) => (await s.run(['cat', '--', path], { allowFailure: true })).stdout,
    start: async (scratch, what, file, args) => {
      const r = await s.run(sh(START, scratch, what, file, ...args), { allowFailure: true });
      const pid = Number(r.stdout.trim());
      if (r.code !== 0 || !Number.isInteger(pid) || pid <= 0) throw failed(`starting ${what} (${file})`, r);
      return pid;
    },
    running: async (scratch, pid) => (await s.run(sh(RUNNING, scratch, String(pid)), { allowFailure: true })).code === 0,
    removeScratch: async (scratch) => {
      const r = await s.run(sh(REMOVE_SCRATCH, scratch), { allowFailure: true });
      if (r.code !== 0) throw failed(`removing ${scratch}`, r);
      return r.stdout.trim().split(/\s+/).filter(Boolean).map(Number);
    },
    sweepStale: async (root, olderThanMs) => {
      const r = await s.run(sh(STALE, root, String(Math.ceil(olderThanMs / 60_000))), { allowFailure: true });
      if (r.code !== 0) throw failed(`listing ${root}`, r);
      const dirs = r.stdout.split('\n').filter((d) => d.startsWith(`${root}/`));
      for (const d of dirs) await host.removeScratch(d);
      return dirs;
    },
    freeBytes: async (dir) => {
      const r = await s.run(['df', '-P', '-k', '--', dir], { allowFailure: true });
      const avail = Number(r.stdout.trim().split('\n').pop()?.trim().split(/\s+/)[3]);
      if (r.code !== 0 || !Number.isFinite(avail)) throw failed(`df ${dir}`, r);
      return avail * 1024;
    },
    freePort: async () => {
      const used = portsInUse((await s.run(['cat', '/proc/net/tcp', '/proc/net/tcp6'], { allowFailure: true })).stdout);
      // Below the kernel's default ephemeral range (32768-60999), so an outgoing connection does not take it meanwhile.
      for (let i = 0; i < 1000; i++) {
        const port = 20000 + Math.floor(Math.random() * 12000);
        if (used.has(port) || handedOut.has(port)) continue;
        handedOut.add(port);
        return port;
      }
      throw new Error(`drill node "${name}": no free port found between 20000 and 32000`);
    },
    reach: async (port) => {
      const known = forwards.get(port);
      if (known) return known;
      const { address } = await s.forward(port);
      forwards.set(port, address);
      return address;
    },
  };
  return host;
}
