import { parseConfig } from '../../src/config/load';
import { configChanges } from '../../src/config/reload';

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMbq1c5ZQk6pVZr0yQdX3f0b2m5M6mKk0B8w3o3W2w2a';
const cluster = (name: string, host = '10.0.0.1') => ({
  name,
  nodes: [{ name: 'cp1', host, hostKey: HOST_KEY }],
  storage: { bucket: 'etcd-backups' },
});

describe('what a config reload changes', () => {
  it('names the clusters added, removed and changed, and the sections read only at start', () => {
    const before = parseConfig({ clusters: [cluster('a'), cluster('b'), cluster('c')] });
    const after = parseConfig({
      temporal: { address: 'temporal.example:7233' },
      clusters: [cluster('a'), cluster('b', '10.0.0.9'), cluster('d')],
    });
    expect(configChanges(before, after)).toEqual({ added: ['d'], removed: ['c'], changed: ['b'], atRestart: ['temporal'] });
    expect(configChanges(before, before)).toEqual({ added: [], removed: [], changed: [], atRestart: [] });
  });
});
