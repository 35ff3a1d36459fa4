import type { SnapshotHost } from '../../src/backup/snapshot-host';
import { inspectOn } from '../../activities/backup/inspect-snapshot';

/**
 * A connection lost mid-inspection (the node torn down, sshd restarted) fails every command of the session. The
 * inspection must fail with it, and leave no rejection unhandled: one of those ends the worker's whole process.
 */
describe('inspecting a snapshot when the connection is lost', () => {
  it('fails the inspection, and no failure goes unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const host = {
        source: 'node',
        label: 'node "cp1"',
        etcdctl: (...args: string[]) => ['etcdctl', ...args],
        etcdutl: 'etcdutl',
        run: async (argv: readonly string[]) => {
          // The endpoint status fails first; the key count (and its retry at the current revision) a moment later.
          await new Promise((r) => setTimeout(r, argv.includes('endpoint') ? 0 : 20));
          throw new Error('Not connected to server');
        },
      } as unknown as SnapshotHost;
      const status = { hash: 1, revision: '42', totalKeys: 3, totalSize: 4096, tool: 'etcdutl' as const };
      await expect(inspectOn(host, { path: '/var/lib/lifeboat/work/s.db', status })).rejects.toThrow('Not connected to server');
      await new Promise((r) => setTimeout(r, 100));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
