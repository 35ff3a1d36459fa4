/**
 * The compose stack's proof (test/compose), run by `npm run compose:up` (scripts/compose-up.sh) and never by
 * `npm test`: it needs Docker, the images built on the machine, and minutes of a cold build (docs/compose.md).
 * It brings up its own Temporal and MinIO in containers, so it has no globalSetup.
 */
const { projects } = require('./jest.config.js');

module.exports = {
  testTimeout: 300000,
  projects: [{ ...projects[0], displayName: 'compose', roots: ['<rootDir>/test/compose'] }],
};
