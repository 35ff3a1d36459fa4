import type { Readable } from 'node:stream';
import { toRevision, type Revision } from '../etcd/revision';
import { command } from '../ssh/quote';

/**
 * etcd starts sending a snapshot within milliseconds, whatever its size (it opens a read transaction and copies from
 * it); 15 s without a byte is etcd gone, not a slow start (a stopped node's load would not stall it that long).
 */
export const FIRST_BYTES_WITHIN_S = 15;

/**
 * SSH mode's snapshot, uploaded while etcd writes it. etcdctl has no streaming save: `snapshot save` writes
 * `<file>.part` and renames it once whole. The node runs it in the background and reads the `.part` file as it grows
 * (`tail -f --pid`, which reads what is left once etcdctl has exited, and follows the file through its rename; a
 * small snapshot may be whole and renamed before it is opened: then the file is read),
 * compresses it there (zstd or gzip: SSH, the worker and the bucket carry the small bytes) and sends it on stdout, so
 * the upload overlaps the save instead of following it. The file stays on the node until the backup is complete:
 * `snapshot status` reads it afterwards, and a retried attempt uploads it instead of taking another.
 *
 * Which revision the snapshot holds names its objects before the first byte is uploaded, and etcd's stream does not
 * say (etcd issue 9037). The node reads etcd's revision before starting etcdctl and again once the first bytes are in
 * the file (etcd opened its read transaction before sending them): equal, the snapshot holds that revision, checked
 * again by `snapshot status` on the finished file. A write in between (tens of milliseconds, all on the node) starts
 * it again, up to `attempts` times; a cluster written to every time is not refused but backed up the older way: the
 * last save finishes into the file, and the worker uploads the file once its status has been read.
 *
 * The first line on stdout says which way it went (FollowHeader); the snapshot's bytes follow it. No byte from etcd
 * within `firstBytesWithinSeconds` of a start: etcdctl is stopped and the script exits 3 without a header, its
 * stderr saying so (the attempt fails and its retry starts over).
 */
export function followSnapshotCommand(o: {
  /** etcdctl with its endpoint and client certificates, as the node runs it. */
  etcdctl: readonly string[];
  runDir: string;
  path: string;
  /** The node's compressor reading stdin (e.g. zstd -q -c -1), or none: the raw bytes go out. */
  compress?: readonly string[];
  attempts: number;
  /** How long etcdctl may wait for etcd's first bytes before the script stops it and fails (FIRST_BYTES_WITHIN_S). */
  firstBytesWithinSeconds?: number;
}): string[] {
  const etcdctl = command(o.etcdctl);
  const firstBytesWithin = Math.max(1, Math.ceil(o.firstBytesWithinSeconds ?? FIRST_BYTES_WITHIN_S));
  const compress = o.compress?.length ? ` | ${command(o.compress)}` : '';
  const script = `
dir=$1 path=$2 part=$2.part log=$2.log
mkdir -p -m 0700 "$dir" || exit 1
# An earlier attempt's etcdctl may still be running (its session dropped, or etcd died under it: etcdctl then waits
# out its whole command timeout). Two saves of one path would rename each other's files: stop it and start over,
# unless it had finished, whose whole file is then uploaded.
old=$(cat "$dir/save.pid" 2>/dev/null)
if [ -n "$old" ] && grep -q 'snapshot' "/proc/$old/cmdline" 2>/dev/null; then
  kill "$old" 2>/dev/null
  while kill -0 "$old" 2>/dev/null; do sleep 0.05; done
fi
if [ -s "$path" ]; then echo 'lifeboat-snapshot file'; exit 0; fi
status() { ${etcdctl} --command-timeout=15s endpoint status -w fields 2>>"$log"; }
field() { sed -n "s/^\\"$1\\" : //p" | tr -d '"'; }
n=0 moves=
while :; do
  n=$((n + 1))
  rm -f -- "$part"
  before=$(status) || { echo 'lifeboat-snapshot failed etcd did not answer'; tail -n 5 "$log" >&2; exit 0; }
  ${etcdctl} --command-timeout=600s snapshot save "$path" >>"$log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/save.pid"
  # etcd sends its first bytes within milliseconds of the start. etcd that dies (or stops) as the save starts leaves
  # etcdctl waiting out its whole command timeout before a byte: stop it, say so, and fail (the retry starts over).
  deadline=$(($(date +%s) + ${firstBytesWithin}))
  while [ ! -s "$part" ] && [ ! -s "$path" ] && kill -0 "$pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
      echo "etcd did not start sending the snapshot within ${firstBytesWithin} s of etcdctl snapshot save starting (etcd down, restarting or stopped?): etcdctl stopped" >&2
      tail -n 5 "$log" >&2; exit 3
    fi
    sleep 0.005
  done
  after=$(status)
  rb=$(printf '%s\\n' "$before" | field Revision)
  ra=$(printf '%s\\n' "$after" | field Revision)
  if [ ! -s "$part" ] && [ ! -s "$path" ]; then
    wait "$pid"
    echo "lifeboat-snapshot failed etcdctl snapshot save exited $? before any byte"; tail -n 5 "$log" >&2; exit 0
  fi
  if [ -n "$rb" ] && [ "$rb" = "$ra" ]; then break; fi
  moves="$moves $rb->$ra"
  if [ "$n" -ge ${Math.max(1, Math.floor(o.attempts))} ]; then
    wait "$pid"
    echo "lifeboat-snapshot unpinned attempts=$n moves=$moves saved=$?"; exit 0
  fi
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
done
echo "lifeboat-snapshot streaming revision=$rb version=$(printf '%s\\n' "$before" | field Version) attempts=$n"
{ tail -c +1 -s 0.1 --pid="$pid" -f -- "$part" 2>/dev/null || cat -- "$path"; }${compress}
wait "$pid"; saved=$?
[ "$saved" -eq 0 ] || { tail -n 5 "$log" >&2; exit "$saved"; }
test -s "$path" && ! test -e "$part"
`;
  return ['sh', '-c', script, 'lifeboat-snapshot', o.runDir, o.path];
}

/** The script's first line. */
export type FollowHeader =
  | { kind: 'streaming'; revision: Revision; serverVersion?: string; attempts: number }
  /** An earlier attempt of this run left the whole file: upload it. */
  | { kind: 'file' }
  /** etcd moved during every start: the last save finished into the file (saved = its exit code). */
  | { kind: 'unpinned'; attempts: number; moves: string; saved: number }
  /** etcd did not answer or etcdctl failed before a byte: the file path's checks say why, with their fix. */
  | { kind: 'failed'; why: string };

export function parseFollowHeader(line: string): FollowHeader {
  const m = /^lifeboat-snapshot (streaming|file|unpinned|failed)(?: (.*))?$/.exec(line.trim());
  if (!m) throw new Error(`the node's snapshot command began with ${JSON.stringify(line.slice(0, 120))}, not its header`);
  const rest = m[2] ?? '';
  const field = (name: string) => new RegExp(`(?:^| )${name}=(\\S*)`).exec(rest)?.[1];
  if (m[1] === 'file') return { kind: 'file' };
  if (m[1] === 'failed') return { kind: 'failed', why: rest };
  if (m[1] === 'unpinned') {
    return {
      kind: 'unpinned',
      attempts: Number(field('attempts')),
      moves: /moves=(.*?)(?: saved=|$)/.exec(rest)?.[1]?.trim() ?? '',
      saved: Number(field('saved')),
    };
  }
  const revision = field('revision');
  if (!revision || !/^\d{1,19}$/.test(revision)) throw new Error(`the node's snapshot header has no revision: ${line.slice(0, 120)}`);
  return {
    kind: 'streaming',
    revision: toRevision(revision),
    serverVersion: field('version') || undefined,
    attempts: Number(field('attempts')),
  };
}

/**
 * Reads the first line of `stream` (at most `limit` bytes) and puts back what follows it, for the next reader. Gives
 * up when `signal` aborts (a stream whose connection was torn down may never end).
 */
export function readFirstLine(stream: Readable, signal?: AbortSignal, limit = 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onAbort = () => done(signal?.reason instanceof Error ? signal.reason : new Error('cancelled'));
    const done = (err: Error | null, line?: string) => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(line!);
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = stream.read() as Buffer | null) !== null) {
        buf = Buffer.concat([buf, chunk]);
        const nl = buf.indexOf(10);
        if (nl >= 0) {
          const rest = buf.subarray(nl + 1);
          if (rest.length > 0) stream.unshift(rest);
          return done(null, buf.subarray(0, nl).toString('utf8'));
        }
        if (buf.length > limit) return done(new Error(`no line in the first ${limit} bytes`));
      }
    };
    const onEnd = () => done(null, buf.toString('utf8'));
    const onError = (err: Error) => done(err);
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', onError);
  });
}
