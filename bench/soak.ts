import { randomInt } from 'node:crypto';
import { FAULT_KINDS, type FaultKind } from './soak/faults';
import { runSoak } from './soak/run';

/**
 * `npm run soak -- [--minutes N] [--seed S] [--faults kind,kind]`: faults for N minutes (default 60) on a sandbox
 * cluster under the engine's schedules and a steady write load, then the invariants (docs/soak.md). Prints the seed
 * first and each fault with its time, so a failing run can be replayed; the last line is the summary. Exit 1 when an
 * invariant broke.
 */
function options(argv: string[]): { minutes: number; seed: number; kinds: FaultKind[] } {
  const o = { minutes: 60, seed: randomInt(0, 2 ** 32 - 1), kinds: [...FAULT_KINDS] as FaultKind[] };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const number = (what: string) => {
      const n = Number(value);
      if (value === undefined || !Number.isInteger(n) || n < 0)
        throw new Error(`${flag}: expected a whole number (${what}), got ${value ?? 'nothing'}`);
      i++;
      return n;
    };
    if (flag === '--minutes') o.minutes = Math.max(1, number('minutes of faults'));
    else if (flag === '--seed') o.seed = number('the seed a run printed, to replay it');
    else if (flag === '--faults') {
      const kinds = (value ?? '').split(',').filter(Boolean);
      const unknown = kinds.filter((k) => !(FAULT_KINDS as readonly string[]).includes(k));
      if (!kinds.length || unknown.length)
        throw new Error(`--faults: expected some of ${FAULT_KINDS.join(', ')}, got ${unknown.join(', ') || 'nothing'}`);
      o.kinds = kinds as FaultKind[];
      i++;
    } else throw new Error(`unknown option ${flag}: expected --minutes N, --seed S, --faults ${FAULT_KINDS.join(',')}`);
  }
  return o;
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const result = await runSoak({ ...o, drills: true });
  console.log(result.line);
  process.exitCode = result.problems.length ? 1 : 0;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(2);
});
