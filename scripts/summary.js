// Prints the closing "N passed, N failed[, N skipped]" line from jest's --json results. A suite that could not run
// (syntax error, failing beforeAll outside tests) counts as a failure: jest may report zero failed tests for it.
const fs = require('node:fs');
const file = process.argv[2];
let r;
try {
  r = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (err) {
  console.log(`no jest results (${err.message})`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const suiteErrors = r.testResults.filter((s) => s.status === 'failed' && s.assertionResults.every((a) => a.status !== 'failed')).length;
const failed = r.numFailedTests + suiteErrors;
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`${r.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || r.numTotalTests === 0 ? 1 : 0);
