import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const root = join(__dirname, '../..');

describe('npm run lint:style', () => {
  // The type-aware rules (no-floating-promises, no-misused-promises, ...) and the formatter, enforced by npm test:
  // a lint problem fails the run like any test, with eslint's own report as the message. The types themselves are
  // checked before any test runs (scripts/ensure-deps.sh compiles tsconfig.json and stops npm test on an error), so
  // this does not type-check a second time (`npm run lint` does both).
  it('is clean', async () => {
    const run = await promisify(execFile)('npm', ['run', '--silent', 'lint:style'], { cwd: root, maxBuffer: 16 * 1024 * 1024 }).then(
      () => ({ ok: true, output: '' }),
      (err: { stdout?: string; stderr?: string }) => ({ ok: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}` }),
    );
    expect(run.output).toBe('');
    expect(run.ok).toBe(true);
  }, 300_000);
});
