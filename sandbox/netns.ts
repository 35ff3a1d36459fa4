import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Sandbox nodes are network namespaces joined to the host by a veth pair, each on its own /24 inside 10.213.0.0/16:
 * the node is 10.213.N.2, the host side 10.213.N.1. Traffic never leaves this machine.
 */
export const SUBNET_PREFIX = '10.213';

export async function sh(file: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await run(file, args as string[], { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

/** Whether a process with this pid still runs (signal 0 checks without signalling). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function killNamespaceProcesses(netns: string): Promise<void> {
  const pids = (await sh('ip', ['netns', 'pids', netns]).catch(() => '')).split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export async function deleteNamespace(netns: string): Promise<void> {
  await killNamespaceProcesses(netns);
  await sh('ip', ['netns', 'del', netns]).catch(() => undefined);
}

/** Namespaces are named lifeboat-<pid>-<node>; those of a test run that died are removed on the next start. */
export async function removeStaleNamespaces(): Promise<void> {
  const list = await sh('ip', ['netns', 'list']).catch(() => '');
  for (const line of list.split('\n')) {
    const m = /^(lifeboat-(\d+)-\S+)/.exec(line.trim());
    if (m && Number(m[2]) !== process.pid && !alive(Number(m[2]))) await deleteNamespace(m[1]);
  }
}

export async function usedSubnets(): Promise<Set<number>> {
  const out = await sh('ip', ['-o', '-4', 'addr', 'show']);
  const used = new Set<number>();
  for (const m of out.matchAll(new RegExp(`inet ${SUBNET_PREFIX.replace('.', '\\.')}\\.(\\d+)\\.`, 'g'))) used.add(Number(m[1]));
  return used;
}

/**
 * Subnets a process keeps for a replacement node after destroying the one that had them (a file per subnet, holding
 * the pid): no other run's new node takes the address in between. A hold of a process that is gone is void.
 */
const HOLDS = '/run/lifeboat-sandbox-subnets';

export async function holdSubnet(n: number): Promise<void> {
  await mkdir(HOLDS, { recursive: true });
  await writeFile(join(HOLDS, String(n)), String(process.pid));
}

async function releaseSubnet(n: number): Promise<void> {
  const holder = await readFile(join(HOLDS, String(n)), 'utf8').then(Number, () => undefined);
  if (holder === process.pid) await rm(join(HOLDS, String(n)), { force: true });
}

/** Subnets held by live processes (this one's included: it holds them for a node it will pin there). */
async function heldSubnets(): Promise<Set<number>> {
  const held = new Set<number>();
  for (const name of await readdir(HOLDS).catch(() => [] as string[])) {
    const pid = await readFile(join(HOLDS, name), 'utf8').then(Number, () => NaN);
    if (Number.isInteger(pid) && alive(pid)) held.add(Number(name));
  }
  return held;
}

/**
 * Creates the namespace and its veth link; returns the node's address. `subnet` pins it (to take over an address).
 * Test files running side by side can pick the same free subnet: the host link's name (lbh<N>) is the lock, the
 * first `ip link add` wins and the other tries the next subnet, never touching the winner's link.
 */
export async function createNamespace(netns: string, subnet?: number): Promise<{ ip: string; subnet: number }> {
  const lost = new Set<number>();
  for (;;) {
    const used = await usedSubnets();
    const held = await heldSubnets();
    const n = subnet ?? [...Array(254).keys()].map((i) => i + 1).find((i) => !used.has(i) && !held.has(i) && !lost.has(i));
    if (n === undefined) throw new Error('no free sandbox subnet in 10.213.0.0/16');
    if (used.has(n)) throw new Error(`sandbox subnet ${SUBNET_PREFIX}.${n}.0/24 is still in use`);
    const made = await createOn(netns, n);
    if (made) {
      if (subnet !== undefined) await releaseSubnet(subnet);
      return made;
    }
    if (subnet !== undefined) throw new Error(`sandbox subnet ${SUBNET_PREFIX}.${n}.0/24 was taken while this node was being made`);
    lost.add(n);
  }
}

/** The namespace on subnet n, or undefined when another run took n first (its link already exists). */
async function createOn(netns: string, n: number): Promise<{ ip: string; subnet: number } | undefined> {
  const hostIf = `lbh${n}`;
  const nodeIf = `lbn${n}`;
  await sh('ip', ['netns', 'add', netns]);
  let linked = false;
  try {
    try {
      await sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nodeIf]);
      linked = true;
    } catch (err) {
      if (/File exists/.test((err as Error).message)) {
        await deleteNamespace(netns);
        return undefined;
      }
      throw err;
    }
    await sh('ip', ['link', 'set', nodeIf, 'netns', netns]);
    await sh('ip', ['addr', 'add', `${SUBNET_PREFIX}.${n}.1/24`, 'dev', hostIf]);
    await sh('ip', ['link', 'set', hostIf, 'up']);
    await sh('ip', ['netns', 'exec', netns, 'ip', 'addr', 'add', `${SUBNET_PREFIX}.${n}.2/24`, 'dev', nodeIf]);
    await sh('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', nodeIf, 'up']);
    await sh('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', 'lo', 'up']);
  } catch (err) {
    if (linked) await sh('ip', ['link', 'del', hostIf]).catch(() => undefined);
    await deleteNamespace(netns);
    throw err;
  }
  return { ip: `${SUBNET_PREFIX}.${n}.2`, subnet: n };
}
