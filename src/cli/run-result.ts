import { WorkflowFailedError } from '@temporalio/client';

/**
 * A run's result for the CLI: when it failed, the run's own failure (cluster, step, cause) instead of the client's
 * bare "Workflow execution failed". `what` names the run: "backup", "import", "drill".
 */
export async function runResult<T>(what: string, result: Promise<T>): Promise<T> {
  try {
    return await result;
  } catch (err) {
    if (err instanceof WorkflowFailedError) throw new Error(`${what} failed: ${err.cause?.message ?? err.message}`, { cause: err });
    throw err;
  }
}
