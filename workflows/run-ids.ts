/**
 * The workflow ids other parts find runs by. A recovery is looked up as recover-<cluster> by the health check, the
 * revision floor, the cooldown and the CLI; a response is signalled as respond-<cluster> by the alert receiver. A run
 * under another id (typed into the UI's start form) would be invisible to all of them, so the workflows refuse it.
 * Pure: used by workflows and by their callers.
 */
export const recoveryWorkflowId = (cluster: string) => `recover-${cluster}`;
export const responseWorkflowId = (cluster: string) => `respond-${cluster}`;

/** The refusal of a run started under another id than the one its kind must run as. */
export function wrongWorkflowIdProblem(kind: string, actual: string, expected: string, howTo: string): string | undefined {
  if (actual === expected) return undefined;
  return `a ${kind} of this cluster runs as workflow id ${expected}, one at a time, so that everything that looks for it finds it; this run is ${actual.slice(0, 200)}: start it again as ${expected} (${howTo})`;
}

/** Continuous backups: one capture per cluster, found (and stopped) by `lifeboat schedule sync` under this id. */
export const captureWorkflowId = (cluster: string) => `capture-${cluster}`;
