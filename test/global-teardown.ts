import { rm } from 'node:fs/promises';

export default async function globalTeardown(): Promise<void> {
  const bed = (globalThis as Record<string, unknown>).__lifeboatTestBed as
    { servers: { stop(): Promise<void> }[]; dir: string } | undefined;
  if (!bed) return;
  await Promise.all(bed.servers.map((s) => s.stop()));
  if (!process.env.LIFEBOAT_KEEP_SANDBOX) await rm(bed.dir, { recursive: true, force: true });
}
