import { parseConfig } from '../../src/config/load';
import { siteTaskQueue } from '../../src/temporal/connection';
import { workerQueues } from '../../src/temporal/worker-sites';
import { scheduleFor } from '../../src/schedules/backup-schedules';

const node = {
  name: 'cp1',
  host: '192.0.2.10',
  hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMbq1c5ZQk6pVZr0yQdX3f0b2m5M6mKk0B8w3o3W2w2a',
};
const cluster = (name: string, site?: string) => ({ name, nodes: [node], storage: { bucket: 'etcd-backups' }, ...(site ? { site } : {}) });
const config = parseConfig({
  temporal: { taskQueue: 'lb' },
  clusters: [cluster('east-1', 'east'), cluster('east-2', 'east'), cluster('west-1', 'west'), cluster('lab')],
});

describe('sites: which task queue a cluster runs on and which a worker polls', () => {
  it("puts a site's clusters on <taskQueue>-<site> and the others on the task queue itself", () => {
    expect(siteTaskQueue('lb', 'east')).toBe('lb-east');
    expect(siteTaskQueue('lb', undefined)).toBe('lb');
  });

  it('a worker started for sites polls only their queues and names the clusters it leaves to others', () => {
    expect(workerQueues(config, ['east'], {})).toEqual({ taskQueues: ['lb-east'], elsewhere: ['west-1', 'lab'] });
    expect(workerQueues(config, ['east', 'west'], {})).toEqual({ taskQueues: ['lb-east', 'lb-west'], elsewhere: ['lab'] });
    // Without --site: the clusters without one, on the task queue (LIFEBOAT_TASK_QUEUE wins, as everywhere).
    expect(workerQueues(config, [], {})).toEqual({ taskQueues: ['lb'], elsewhere: ['east-1', 'east-2', 'west-1'] });
    expect(workerQueues(config, ['west'], { LIFEBOAT_TASK_QUEUE: 'other' }).taskQueues).toEqual(['other-west']);
  });

  it('refuses a site no cluster names, naming the flag, the field and the sites there are', () => {
    expect(() => workerQueues(config, ['eats'], {})).toThrow(
      /--site eats: no cluster of the config has site "eats" \(clusters\[\]\.site: "east", "west"\)/,
    );
    expect(() => workerQueues(parseConfig({ clusters: [cluster('lab')] }), ['east'], {})).toThrow(/clusters\[\]\.site: none set/);
  });

  it('refuses a site that is not a name, at the field', () => {
    expect(() => parseConfig({ clusters: [cluster('x', 'East Coast')] })).toThrow(/clusters\[0\]\.site/);
  });

  it("a schedule starts its runs on the queue it is given (schedule sync passes the cluster's site's)", () => {
    const s = scheduleFor(config.clusters[0], siteTaskQueue('lb', config.clusters[0].site));
    expect(s.action).toMatchObject({ taskQueue: 'lb-east' });
  });
});
