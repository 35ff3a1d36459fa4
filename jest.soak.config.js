/**
 * The soak's short variant (test/soak), run by `npm run soak:smoke` and not yet by `npm test`: it brings up servers of
 * its own (the faults restart and fill them), takes 5–8 minutes, and has one clean run behind it so far; it joins
 * `npm test` once it has passed ten in a row (`npm run test:loop`) and the suite has the minutes for it (docs/soak.md).
 */
const { projects } = require('./jest.config.js');

module.exports = {
  testTimeout: 1200000,
  projects: [{ ...projects[0], displayName: 'soak', roots: ['<rootDir>/test/soak'] }],
};
