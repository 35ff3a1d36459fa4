// Prints the closing "N passed, N failed[, N skipped]" line from jest's --json results. A suite that could not run
// (syntax error, failing beforeAll outside tests) counts as a failure: jest may report zero failed tests for it.
// Several result files (npm test's side-by-side run and its one-at-a-time run) are counted as one.
const fs = require('node:fs');
const files = process.argv.slice(2);
let runs;
try {
  if (files.length === 0) throw new Error('no results file named');
  runs = files.map((file) => JSON.parse(fs.readFileSync(file, 'utf8')));
} catch (err) {
  console.log(`no jest results (${err.message})`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const COUNTS = ['numPassedTests', 'numFailedTests', 'numPendingTests', 'numTodoTests', 'numTotalTests'];
const r = { testResults: runs.flatMap((x) => x.testResults) };
for (const k of COUNTS) r[k] = runs.reduce((n, x) => n + (x[k] ?? 0), 0);
// Wall time per run: from jest's start to its last file's end (files side by side overlap, so their sum is more).
const walls = runs.map((x) => (Math.max(x.startTime, ...x.testResults.map((t) => t.endTime)) - x.startTime) / 60_000);
// Each file's time, slowest first: where the suite's minutes go (CI has 90 of them on a cold machine).
const path = require('node:path');
const timed = r.testResults
  .map((s) => ({ file: path.relative(process.cwd(), s.name), seconds: (s.endTime - s.startTime) / 1000, status: s.status }))
  .sort((a, b) => b.seconds - a.seconds);
// The slowest single tests, before the files: which proof to trim when the suite outgrows its budget.
const tests = r.testResults
  .flatMap((s) => s.assertionResults.map((a) => ({ name: `${path.basename(s.name)} › ${a.title}`, seconds: (a.duration ?? 0) / 1000 })))
  .sort((a, b) => b.seconds - a.seconds)
  .slice(0, 25);
console.log('\nslowest tests:');
for (const t of tests) console.log(`  ${t.seconds.toFixed(1).padStart(7)} s  ${t.name.slice(0, 160)}`);
const total = timed.reduce((t, s) => t + s.seconds, 0);
console.log(
  `\ntime per file (${timed.length} files, ${(total / 60).toFixed(1)} min of files in ${walls.reduce((a, b) => a + b, 0).toFixed(1)} min of wall time${walls.length > 1 ? `: ${walls.map((w) => w.toFixed(1)).join(' + ')}` : ''}):`,
);
for (const s of timed) console.log(`  ${s.seconds.toFixed(1).padStart(7)} s  ${s.file}${s.status === 'failed' ? '  (failed)' : ''}`);
// Why each failure failed, last before the count: CI keeps only the tail of what a run printed, and a suite that
// could not run (0.0 s above) says why only here.
const failures = [];
for (const s of r.testResults) {
  const file = path.relative(process.cwd(), s.name);
  const failedTests = s.assertionResults.filter((a) => a.status === 'failed');
  if (failedTests.length === 0 && s.status === 'failed') failures.push({ what: `${file} (could not run)`, why: s.message });
  for (const a of failedTests) failures.push({ what: `${file} › ${a.fullName}`, why: (a.failureMessages ?? []).join('\n') });
}
// Without the terminal's colour codes (ESC [ ... m), built from a string: eslint refuses control characters in a regex literal.
const COLOURS = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
const firstLines = (text, n) =>
  String(text ?? '')
    .replace(COLOURS, '')
    .split('\n')
    .filter((l) => l.trim())
    .slice(0, n);
if (failures.length) {
  console.log(`\nfailures (${failures.length}):`);
  const shown = failures.slice(0, 10);
  // CI keeps the run's last ~80 lines: one failure may say why at length (a killed worker's attempts and log), many share.
  const perFailure = Math.max(8, Math.floor(48 / shown.length));
  for (const f of shown) {
    console.log(`  ✕ ${f.what}`);
    for (const line of firstLines(f.why, perFailure)) console.log(`      ${line.slice(0, 300)}`);
  }
}
const suiteErrors = r.testResults.filter((s) => s.status === 'failed' && s.assertionResults.every((a) => a.status !== 'failed')).length;
const failed = r.numFailedTests + suiteErrors;
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`${r.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || r.numTotalTests === 0 ? 1 : 0);
