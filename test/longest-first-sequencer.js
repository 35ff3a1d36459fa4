const { relative } = require('node:path');
const Sequencer = require('@jest/test-sequencer').default;

/**
 * The slowest files first, so the lanes end together. Jest orders by the times of the previous run in its cache, and
 * without them (every CI run: a clean clone, a fresh temp folder) by file size, which put the soak's short variant, a
 * small file that runs for almost four minutes, last: one lane ran it alone while the other sat idle. Seconds from
 * a side-by-side run (2026-12-04, `npm test` prints them at the end); a file not named here runs after these, and a
 * time from jest's cache, when there is one, wins.
 */
const SECONDS = {
  'test/integration/recovery-kill-matrix.test.ts': 334,
  'test/soak/soak-smoke.test.ts': 223,
  'test/integration/drill.test.ts': 210,
  'test/integration/backup-stream-faults.test.ts': 174,
  'test/integration/backup-revision-floor.test.ts': 164,
  'test/integration/cli.test.ts': 157,
  'test/integration/recovery-durability.test.ts': 149,
  'test/integration/temporal-ui.test.ts': 148,
  'test/integration/drill-node.test.ts': 147,
  'test/integration/recovery-rollback.test.ts': 143,
  'test/integration/temporal-postgres.test.ts': 135,
  'test/integration/recovery.test.ts': 114,
  'test/integration/follow-snapshot.test.ts': 114,
  'test/integration/backup-faults.test.ts': 109,
  'test/integration/recovery-new-node.test.ts': 108,
  'test/integration/fleet.test.ts': 100,
  'test/integration/compression.test.ts': 95,
  'test/integration/continuous-capture.test.ts': 92,
  'test/integration/continuous-faults.test.ts': 92,
  'test/integration/import.test.ts': 81,
  'test/integration/etcd34.test.ts': 70,
  'test/integration/recovery-preflight.test.ts': 69,
  'test/integration/response-logic.test.ts': 67,
  'test/integration/health.test.ts': 65,
  'test/unit/lint.test.ts': 63,
};

class LongestFirst extends Sequencer {
  sort(tests) {
    const seconds = (test) => this.time(test) ?? SECONDS[relative(test.context.config.rootDir, test.path)] ?? 0;
    return [...tests].sort((a, b) => seconds(b) - seconds(a) || (a.path < b.path ? -1 : 1));
  }
}

module.exports = LongestFirst;
