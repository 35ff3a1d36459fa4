import { existsSync } from 'node:fs';
import { createNamespace, deleteNamespace, holdSubnet, sh } from '../../sandbox/netns';

/**
 * Sandbox nodes made at the same moment (test files side by side, a fleet's nodes) each get their own subnet: the
 * host link's name is the lock. Before, both took the first free subnet, the second failed with "File exists" and
 * its clean-up deleted the first one's link.
 */
describe('sandbox network namespaces', () => {
  const names = [...Array(6).keys()].map((i) => `lifeboat-${process.pid}-race${i}`);
  const replaced = ['dead', 'other', 'replacement'].map((n) => `lifeboat-${process.pid}-${n}`);
  afterAll(async () => {
    for (const n of [...names, ...replaced]) await deleteNamespace(n);
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

  it("a destroyed node's held address goes to its replacement, not to a node made in between", async () => {
    const [dead, other, replacement] = replaced;
    const { subnet } = await createNamespace(dead);
    await holdSubnet(subnet);
    await sh('ip', ['link', 'del', `lbh${subnet}`]);
    await deleteNamespace(dead);
    // Lowest free first: without the hold, the next node would take the freed subnet.
    expect((await createNamespace(other)).subnet).not.toBe(subnet);
    expect((await createNamespace(replacement, subnet)).subnet).toBe(subnet);
    expect(existsSync(`/run/lifeboat-sandbox-subnets/${subnet}`)).toBe(false);
  });
});
