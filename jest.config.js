/**
 * Two projects: `unit` (pure logic, lint, promtool, the build check: no servers) and `integration` (one Temporal dev
 * server and one MinIO started by globalSetup for the whole run, shared by every file; the sandbox clusters each file
 * makes). `npx jest --selectProjects unit` runs in seconds without starting anything. Run in band (scripts/test.sh):
 * the integration tests share the servers and a 2-core machine.
 */
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  slowTestThreshold: 30,
};

module.exports = {
  testTimeout: 180000,
  projects: [
    { ...common, displayName: 'unit', roots: ['<rootDir>/test/unit'], testMatch: ['**/*.test.ts'] },
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
