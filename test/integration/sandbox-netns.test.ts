import { createNamespace, deleteNamespace, sh } from '../../sandbox/netns';

/**
 * Sandbox nodes made at the same moment (test files side by side, a fleet's nodes) each get their own subnet: the
 * host link's name is the lock. Before, both took the first free subnet, the second failed with "File exists" and
 * its clean-up deleted the first one's link.
 */
describe('sandbox network namespaces', () => {
  const names = [...Array(6).keys()].map((i) => `lifeboat-${process.pid}-race${i}`);
  afterAll(async () => {
    for (const n of names) await deleteNamespace(n);
  });

  it('made at once, each gets its own subnet and keeps its link', async () => {
    const made = await Promise.all(names.map((n) => createNamespace(n)));
    expect(new Set(made.map((m) => m.subnet)).size).toBe(names.length);
    for (const [i, m] of made.entries()) {
      const addrs = await sh('ip', ['netns', 'exec', names[i], 'ip', '-o', '-4', 'addr', 'show']);
      expect(addrs).toContain(`inet ${m.ip}/24`);
      expect(await sh('ip', ['-o', 'link', 'show', `lbh${m.subnet}`])).toMatch(/state UP|UP/);
    }
  });
});
