// For scripts/loop.sh: from several jest --json results of the same files, each case that ever failed, how often, and
// its first failure's first line; exit 1 when any did. A file that could not run at all counts as a failed case.
const fs = require('node:fs');
const path = require('node:path');
const runs = process.argv.slice(2).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
const failures = new Map();
for (const r of runs)
  for (const s of r.testResults) {
    const file = path.relative(process.cwd(), s.name);
    const failed = s.assertionResults.filter((a) => a.status === 'failed');
    const cases = failed.length ? failed.map((a) => ({ name: a.fullName, message: a.failureMessages[0] ?? '' })) : [];
    if (!cases.length && s.status === 'failed') cases.push({ name: '(the file did not run)', message: s.message ?? '' });
    for (const c of cases) {
      const key = `${file} › ${c.name}`;
      const seen = failures.get(key) ?? { count: 0, first: c.message.split('\n').find((l) => l.trim()) ?? '' };
      seen.count++;
      failures.set(key, seen);
    }
  }
console.log(`\n${runs.length} runs:`);
if (!failures.size) console.log('  every case passed every time');
for (const [key, f] of [...failures].sort((a, b) => b[1].count - a[1].count))
  console.log(`  ${f.count}/${runs.length} failed  ${key}\n      ${f.first.trim().slice(0, 300)}`);
process.exit(failures.size ? 1 : 0);
