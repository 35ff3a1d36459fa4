import { MockActivityEnvironment } from '@temporalio/testing';
import { throttledHeartbeat, transferring, whilePreparing } from '../../activities/heartbeat';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('whilePreparing', () => {
  it('heartbeats on its timer before and after a transfer, and only progress heartbeats while bytes flow', async () => {
    const env = new MockActivityEnvironment();
    const beats: { at: string; details: unknown }[] = [];
    let phase = 'preparing';
    env.on('heartbeat', (details: unknown) => beats.push({ at: phase, details }));
    await env.run(() =>
      whilePreparing(
        () => ({ step: 'preparing' }),
        async () => {
          await sleep(200);
          phase = 'transferring';
          const progress = throttledHeartbeat(0);
          await transferring(async () => {
            progress({ key: 'k', bytes: 1 });
            await sleep(300); // a stall: nothing but the one progress heartbeat
          });
          phase = 'finishing';
          await sleep(200);
        },
        40,
      ),
    );
    expect(beats.filter((b) => b.at === 'preparing').length).toBeGreaterThanOrEqual(2);
    expect(beats.filter((b) => b.at === 'preparing').every((b) => JSON.stringify(b.details) === '{"step":"preparing"}')).toBe(true);
    // While the transfer is under way the timer is quiet: a stalled transfer is left to the heartbeat timeout.
    expect(beats.filter((b) => b.at === 'transferring')).toEqual([{ at: 'transferring', details: { key: 'k', bytes: 1 } }]);
    // Afterwards the timer repeats the last progress details (a retry reads the upload's key there).
    const finishing = beats.filter((b) => b.at === 'finishing');
    expect(finishing.length).toBeGreaterThanOrEqual(2);
    expect(finishing.every((b) => JSON.stringify(b.details) === '{"key":"k","bytes":1}')).toBe(true);
  });

  it("keeps the previous attempt's details until this one has its own", async () => {
    const env = new MockActivityEnvironment({ heartbeatDetails: { key: 'from-attempt-1' } });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    await env.run(() =>
      whilePreparing(
        () => ({ step: 'preparing' }),
        () => sleep(150),
        40,
      ),
    );
    expect(beats.length).toBeGreaterThanOrEqual(2);
    expect(beats.every((d) => JSON.stringify(d) === '{"key":"from-attempt-1"}')).toBe(true);
  });
});
