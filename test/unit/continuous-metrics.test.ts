import { registry } from '../../src/metrics/registry';
import { forgetCluster, recordChainBreak, recordDurable } from '../../src/metrics/continuous-metrics';

/** The lag gauge as a scrape sees it, per cluster. */
async function lagOf(cluster: string): Promise<number | undefined> {
  const metric = await registry.getSingleMetric('lifeboat_continuous_lag_seconds')!.get();
  return metric.values.find((v) => v.labels.cluster === cluster)?.value;
}

describe('continuous backup metrics', () => {
  afterEach(() => jest.useRealTimers());

  it('lag is computed at each scrape from the durable moment, so a capture that stopped shows a growing lag', async () => {
    jest.useFakeTimers({ now: new Date('2026-12-03T08:00:00Z') });
    recordDurable('m1', '2026-12-03T07:59:55Z');
    expect(await lagOf('m1')).toBe(5);
    jest.setSystemTime(new Date('2026-12-03T08:03:00Z'));
    expect(await lagOf('m1')).toBe(185);
    // An older moment (a retried attempt's report) never moves it back; a newer one does.
    recordDurable('m1', '2026-12-03T07:00:00Z');
    expect(await lagOf('m1')).toBe(185);
    recordDurable('m1', new Date('2026-12-03T08:02:58Z'));
    expect(await lagOf('m1')).toBe(2);
    forgetCluster('m1');
    expect(await lagOf('m1')).toBeUndefined();
  });

  it('counts chain breaks per cluster', async () => {
    recordChainBreak('m2');
    recordChainBreak('m2');
    const metric = await registry.getSingleMetric('lifeboat_continuous_chain_breaks_total')!.get();
    expect(metric.values.find((v) => v.labels.cluster === 'm2')?.value).toBe(2);
  });
});
