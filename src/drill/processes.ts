import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { readdir, readFile, appendFile, rm, stat } from 'node:fs/promises';

/**
 * The throwaway servers of a drill run on the drill host as children in their own process groups. Each pid is
 * appended to <scratch>/pids as soon as it exists, so a later attempt (after the worker crashed) or the clean-up
 * step finds and ends them by pid — and only them: a pid is signalled only while its command line still names the
 * scratch dir, so a recycled pid of some other program is never touched.
 */
export const PID_FILE = 'pids';

export function startThrowaway(scratch: string, name: string, file: string, args: string[]): Promise<number> {
  const fd = openSync(`${scratch}/${name}.log`, 'a');
  const child = spawn(file, args, { detached: true, stdio: ['ignore', fd, fd], cwd: scratch });
  closeSync(fd);
  child.unref();
  return new Promise((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`${name}: cannot start ${file}: ${err.message}`)));
    child.once('spawn', () => {
      appendFile(`${scratch}/${PID_FILE}`, `${child.pid}\n`).then(
        () => resolve(child.pid!),
        (err: Error) => reject(err),
      );
    });
  });
}

export async function cmdlineOf(pid: number): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ');
  } catch {
    return undefined;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Ends every process recorded in <scratch>/pids that still belongs to this scratch dir: SIGTERM, then SIGKILL. */
export async function stopRecorded(scratch: string, graceMs = 5_000): Promise<number[]> {
  const text = await readFile(`${scratch}/${PID_FILE}`, 'utf8').catch(() => '');
  const pids = [
    ...new Set(
      text
        .split('\n')
        .filter((l) => /^\d+$/.test(l))
        .map(Number),
    ),
  ];
  const ours: number[] = [];
  for (const pid of pids) if ((await cmdlineOf(pid))?.includes(scratch)) ours.push(pid);
  const signal = (sig: NodeJS.Signals) => {
    for (const pid of ours) {
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, sig);
        } catch {
          // gone, or not a group leader
        }
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (ours.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (ours.some(alive)) signal('SIGKILL');
  while (ours.some(alive)) await new Promise((r) => setTimeout(r, 50));
  return ours;
}

/** Stops what the scratch dir recorded, then removes the dir: the drill host is left as it was. */
export async function removeScratch(scratch: string): Promise<number[]> {
  const stopped = await stopRecorded(scratch);
  await rm(scratch, { recursive: true, force: true });
  return stopped;
}

/** A port nobody listens on right now on loopback (the kernel's choice), never the same twice from this process. */
export { freePort } from '../devserver/processes';

/**
 * Removes run dirs under the scratch root older than `olderThanMs` (longer than a drill attempt may run), with what
 * they recorded: left by a worker that died when the retry ran on another worker. Younger ones may be live drills.
 */
export async function sweepStale(root: string, olderThanMs: number, now = Date.now()): Promise<string[]> {
  const swept: string[] = [];
  for (const e of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (!e.isDirectory()) continue;
    const dir = `${root}/${e.name}`;
    const s = await stat(dir).catch(() => undefined);
    if (s && now - s.mtimeMs > olderThanMs) {
      await removeScratch(dir);
      swept.push(dir);
    }
  }
  return swept;
}
