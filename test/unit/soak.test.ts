import { failuresOutsideFaults, lostWrites, newer } from '../../bench/soak/checks';
import { FAULT_KINDS, faultSequence } from '../../bench/soak/faults';
import { seededPrng } from '../../bench/soak/prng';
import type { RunInfo } from '../../bench/soak/runs';
import { soakLine } from '../../bench/soak/run';
import { startWriteLoad, type AckedWrite } from '../../bench/soak/writer';
import type { EtcdClient } from '../../src/etcd/grpc/client';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('the soak (npm run soak): its chance, its bookkeeping, its verdicts', () => {
  it('the same seed gives the same faults, pauses and durations; another seed another order', () => {
    const draw = (seed: number) => {
      const rng = seededPrng(seed);
      const next = faultSequence(rng, FAULT_KINDS);
      return Array.from({ length: 20 }, () => `${next()}:${rng.int(30, 90)}`);
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(43)).not.toEqual(draw(42));
    for (const x of draw(7)) expect(Number(x.split(':')[1])).toBeGreaterThanOrEqual(30);
  });

  it('draws the faults in rounds: every kind once before any comes again', () => {
    const next = faultSequence(seededPrng(1), FAULT_KINDS);
    const first = Array.from({ length: FAULT_KINDS.length }, next);
    const second = Array.from({ length: FAULT_KINDS.length }, next);
    expect([...first].sort()).toEqual([...FAULT_KINDS].sort());
    expect([...second].sort()).toEqual([...FAULT_KINDS].sort());
  });

  it('refuses a seed that is not a 32-bit whole number, naming it', () => {
    expect(() => seededPrng(-1)).toThrow(/seed: expected an integer 0\.\.4294967295, got -1/);
    expect(() => seededPrng(2 ** 32)).toThrow(/seed/);
    expect(() => seededPrng(1.5)).toThrow(/seed/);
  });

  it('a write is lost when its epoch made it durable and the cluster does not hold it; revisions compared as int64', () => {
    const w = (n: number, revision: string, epoch: number): AckedWrite => ({ key: `/k${n}`, value: `v${n}`, revision, epoch, at: '' });
    const acked = [
      w(1, '9007199254740993', 0), // past 2^53: compared exactly
      w(2, '9007199254740995', 0), // after epoch 0's durable point: allowed to be gone
      w(3, '100', 1),
      w(4, '101', 1),
    ];
    const through = new Map([
      [0, '9007199254740994'],
      [1, '101'],
    ]);
    expect(
      lostWrites(
        acked,
        through,
        new Map([
          ['/k1', 'v1'],
          ['/k3', 'v3'],
          ['/k4', 'v4'],
        ]),
      ),
    ).toEqual([]);
    expect(
      lostWrites(
        acked,
        through,
        new Map([
          ['/k3', 'v3'],
          ['/k4', 'other'],
        ]),
      ).map((x) => x.key),
    ).toEqual(['/k1', '/k4']);
    // An epoch with no durable point known (its destruction never recovered) asks nothing of the cluster.
    expect(lostWrites(acked, new Map([[1, '101']]), new Map()).map((x) => x.key)).toEqual(['/k3', '/k4']);
    expect(newer('9007199254740993', '9007199254740992')).toBe('9007199254740993');
    expect(newer(undefined, '5')).toBe('5');
  });

  it('a run that failed during a fault (or its grace) is expected; one that failed elsewhere is not', () => {
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
    const run = (id: string, status: string, start: number, end: number): RunInfo => ({
      workflowId: id,
      runId: id,
      type: 'backupCluster',
      status,
      startTime: at(start),
      closeTime: at(end),
    });
    const faults = [{ kind: 'minio-restart', startedAt: at(100), endedAt: at(110) }];
    const runs = [
      run('during', 'FAILED', 95, 105),
      run('grace', 'TIMED_OUT', 115, 120),
      run('before', 'FAILED', 10, 20),
      run('after', 'TERMINATED', 200, 210),
      run('fine', 'COMPLETED', 10, 20),
    ];
    expect(failuresOutsideFaults(runs, faults, 30_000).map((r) => r.workflowId)).toEqual(['before', 'after']);
  });

  it('ends with the one summary line, every count named', () => {
    expect(
      soakLine({
        minutes: 10,
        faults: 7,
        runs: 180,
        unexpected_failures: 0,
        lost_writes: 0,
        stuck: 0,
        healthy_restored: 0,
        recoveries: 1,
        seed: 42,
      }),
    ).toBe('soak: minutes=10 faults=7 runs=180 unexpected_failures=0 lost_writes=0 stuck=0 healthy_restored=0 recoveries=1 seed=42');
  });
});

describe('the soak write load', () => {
  /** An etcd that acknowledges every put with the next revision, or refuses while `down`. */
  const fakeEtcd = () => {
    let revision = 100n;
    const etcd = {
      down: false,
      endpoint: 'fake:2379',
      deadline: () => new Date(Date.now() + 1000),
      kv: {
        Txn: (_req: unknown, _md: unknown, _o: unknown, cb: (err: Error | null, res?: unknown) => void) =>
          setImmediate(() => (etcd.down ? cb(new Error('unavailable')) : cb(null, { header: { revision: String(++revision) } }))),
      },
    };
    return etcd;
  };

  it('records only what etcd acknowledged, each in its epoch, to the file; stopping twice ends once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-soak-writes-'));
    try {
      const etcd = fakeEtcd();
      const load = startWriteLoad(etcd as unknown as EtcdClient, join(dir, 'acked.jsonl'), 200, 't');
      await new Promise((r) => setTimeout(r, 60));
      await load.pause();
      const before = load.acked.length;
      await new Promise((r) => setTimeout(r, 30));
      expect(load.acked.length).toBe(before); // held: nothing written while paused
      etcd.down = true;
      load.nextEpoch();
      load.resume();
      await new Promise((r) => setTimeout(r, 30));
      etcd.down = false;
      await new Promise((r) => setTimeout(r, 30));
      await load.stop();
      await expect(Promise.race([load.stop().then(() => 'ended'), new Promise((r) => setTimeout(() => r('hangs'), 2000))])).resolves.toBe(
        'ended',
      );
      expect(load.failed).toBeGreaterThan(0);
      const lines = (await readFile(join(dir, 'acked.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as AckedWrite);
      expect(lines).toEqual(load.acked);
      expect(new Set(lines.map((w) => w.epoch))).toEqual(new Set([0, 1]));
      expect(lines.every((w) => w.value === `t-${w.key.split('w-')[1]}`)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
