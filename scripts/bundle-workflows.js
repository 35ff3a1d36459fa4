// Bundles the workflow code once at build time (dist/workflow-bundle.js). A worker that loads the bundle skips
// webpack at start-up, which otherwise costs seconds and ~150 MiB of peak memory on every worker start.
const { bundleWorkflowCode } = require('@temporalio/worker');
const { writeFile } = require('node:fs/promises');
const { join } = require('node:path');

(async () => {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve(join(__dirname, '../dist/workflows')),
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error },
  });
  await writeFile(join(__dirname, '../dist/workflow-bundle.js'), code);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
