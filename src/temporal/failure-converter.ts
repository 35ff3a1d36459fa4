import { DefaultFailureConverter } from '@temporalio/common';

/**
 * With payload encryption on, failure messages and stack traces (which name clusters, nodes and paths) move into the
 * failure's encoded attributes, a payload the codec encrypts; history then shows "Encoded failure". Loaded by path:
 * workflow code runs it inside the sandbox, so it is bundled with the workflows (scripts/bundle-workflows.js writes a second bundle with it).
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
