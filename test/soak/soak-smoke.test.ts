import { runSoak } from '../../bench/soak/run';

/**
 * `npm run soak` in short (docs/soak.md): three minutes of faults with a fixed seed, on servers of its own (Temporal
 * dev server, MinIO, a sandbox node: the faults restart and fill them), under a backup every minute, continuous
 * capture and health checks every 5 s, with a steady write load. The faults that need no alert path (the full soak
 * adds the scheduler stopped, the control plane destroyed, drills). Every invariant of the full soak must hold.
 */
const SEED = 20261203;

describe('soak (short): three minutes of faults with nothing lost', () => {
  it(
    'keeps every acknowledged write, every backup verifiable, no run stuck, no secret written, nothing left behind',
    async () => {
      const lines: string[] = [];
      const result = await runSoak({
        minutes: 3,
        seed: SEED,
        kinds: ['worker-kill', 'etcd-restart', 'minio-restart', 'temporal-restart', 'network-drop', 'store-full'],
        gapSeconds: [15, 30],
        log: (line) => {
          lines.push(line);
          process.stderr.write(`[soak] ${line}\n`);
        },
      });
      expect({ problems: result.problems }).toEqual({ problems: [] });
      expect(result.counts.faults).toBeGreaterThanOrEqual(4);
      expect(result.acked).toBeGreaterThan(300);
      expect(result.line).toMatch(
        new RegExp(
          `^soak: minutes=3 faults=\\d+ runs=\\d+ unexpected_failures=0 lost_writes=0 stuck=0 healthy_restored=0 recoveries=0 seed=${SEED}$`,
        ),
      );
    },
    20 * 60_000,
  );
});
