import { spreadCron } from '../../src/schedules/backup-schedules';

describe("backup schedules: each cluster's cron fires on a second of its own", () => {
  it('adds the same second for the same cluster, keeping minute, hour, day, month and weekday', () => {
    const a = spreadCron('0 */6 * * *', 'prod-eu1');
    expect(a).toMatch(/^\d{1,2} 0 \*\/6 \* \* \* \*$/);
    expect(spreadCron('0 */6 * * *', 'prod-eu1')).toBe(a);
    // A 6-field expression (with a year) gets the second in front; the zone prefix stays first.
    expect(spreadCron('CRON_TZ=Europe/Paris 30 2 * * MON 2027', 'prod-eu1')).toBe(
      `CRON_TZ=Europe/Paris ${a.split(' ')[0]} 30 2 * * MON 2027`,
    );
  });

  it('leaves a cron that names its own second, and macros, as written', () => {
    expect(spreadCron('15 0 * * * * *', 'prod-eu1')).toBe('15 0 * * * * *');
    expect(spreadCron('@hourly', 'prod-eu1')).toBe('@hourly');
    expect(spreadCron('@every 10m', 'prod-eu1')).toBe('@every 10m');
  });

  it('spreads a hundred clusters on the same cron over the minute instead of one second', () => {
    const seconds = Array.from({ length: 100 }, (_, i) => Number(spreadCron('* * * * *', `cluster-${i}`).split(' ')[0]));
    expect(Math.min(...seconds)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...seconds)).toBeLessThanOrEqual(59);
    const perSecond = new Map<number, number>();
    for (const s of seconds) perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
    expect(perSecond.size).toBeGreaterThan(40);
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(6);
  });
});
