// The soak's short variant checks that it left nothing in its temp folder by comparing the folder before and after.
// In `npm test` the files running beside it make theirs in the run's shared temp folder meanwhile, so it gets one of
// its own. That has to happen here, outside the test's sandbox: a test file's process.env is jest's copy, while
// os.tmpdir() (in the soak, its servers and nodes) and the processes it starts read the worker process's real one.
const { mkdtempSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { TestEnvironment } = require('jest-environment-node');

class PrivateTmpEnvironment extends TestEnvironment {
  constructor(config, context) {
    const previous = process.env.TMPDIR;
    process.env.TMPDIR = mkdtempSync(join(tmpdir(), 'lifeboat-soak-smoke-'));
    super(config, context);
    this.previousTmp = previous;
  }

  async teardown() {
    await super.teardown();
    // A jest worker runs other files after this one: they get the run's folder back.
    if (this.previousTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = this.previousTmp;
  }
}

module.exports = PrivateTmpEnvironment;
