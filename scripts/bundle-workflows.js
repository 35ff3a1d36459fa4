// Bundles the workflow code once at build time (dist/workflow-bundle.js). A worker that loads the bundle skips
// webpack at start-up, which otherwise costs seconds and ~150 MiB of peak memory on every worker start.
const { bundleWorkflowCode } = require('@temporalio/worker');
const { writeFile } = require('node:fs/promises');
const { join } = require('node:path');

(async () => {
  const logger = { log() {}, trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error };
  const workflowsPath = require.resolve(join(__dirname, '../dist/workflows'));
  // The worker's payload converter runs inside the sandbox: both bundles carry it (src/temporal/data-converter.ts).
  const payloadConverterPath = require.resolve(join(__dirname, '../dist/src/temporal/payload-converter'));
  const { code } = await bundleWorkflowCode({ workflowsPath, logger, payloadConverterPath });
  await writeFile(join(__dirname, '../dist/workflow-bundle.js'), code);
  // With temporal.payloadEncryption the worker loads this one: failure messages go into encrypted attributes.
  const failureConverterPath = require.resolve(join(__dirname, '../dist/src/temporal/failure-converter'));
  const encrypted = await bundleWorkflowCode({ workflowsPath, logger, payloadConverterPath, failureConverterPath });
  await writeFile(join(__dirname, '../dist/workflow-bundle-encrypted.js'), encrypted.code);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
