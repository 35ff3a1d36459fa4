/**
 * The part of a run id that tells runs apart, for naming a run's folders and moved-aside files on a node.
 * Temporal's run ids are UUIDv7: their first characters are a timestamp that every run started within the same
 * ~65 seconds shares, so a prefix would let two recoveries in a row reuse each other's files. The last 12 hex
 * digits are random.
 */
export function runKeyOf(runId: string): string {
  return runId.replace(/-/g, '').slice(-12);
}
