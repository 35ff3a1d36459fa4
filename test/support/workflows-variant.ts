// Version B of the workflows for test/integration/upgrade.test.ts: every workflow of the engine, plus code version A
// does not have, so its bundle (and the build id derived from it) differs as a real upgrade's would.
export * from '../../workflows';

/** Only in version B. */
export async function upgradedOnly(): Promise<string> {
  return 'version B';
}
