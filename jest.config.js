/**
 * Three projects: `unit` (pure logic, lint, promtool, the build check: no servers), `soak` (three minutes of faults on
 * servers of its own) and `integration` (a Temporal dev server and a MinIO per jest worker, started by globalSetup and
 * shared by the files that worker runs; the sandbox clusters each file makes). `npx jest --selectProjects unit` runs
 * in seconds without starting anything. scripts/test.sh runs three workers, then the files with timing windows alone;
 * one file runs in band as `npm test -- <file>`.
 */
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  slowTestThreshold: 30,
};

module.exports = {
  testTimeout: 180000,
  testSequencer: '<rootDir>/test/longest-first-sequencer.js',
  projects: [
    { ...common, displayName: 'unit', roots: ['<rootDir>/test/unit'], testMatch: ['**/*.test.ts'] },
    // The soak's short variant: servers of its own (its faults restart and fill them), so no globalSetup; a temp
    // folder of its own (test/soak/private-tmp-environment.js).
    {
      ...common,
      displayName: 'soak',
      roots: ['<rootDir>/test/soak'],
      testMatch: ['**/*.test.ts'],
      testEnvironment: '<rootDir>/test/soak/private-tmp-environment.js',
    },
    {
      ...common,
      displayName: 'integration',
      roots: ['<rootDir>/test/integration'],
      testMatch: ['**/*.test.ts'],
      globalSetup: '<rootDir>/test/global-setup.ts',
      globalTeardown: '<rootDir>/test/global-teardown.ts',
    },
  ],
};
