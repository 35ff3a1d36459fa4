/**
 * Run keys name per-run folders on a node (<workDir>/backups/<run>, <workDir>/recoveries/<run>). They arrive from
 * workflows, so they are checked like any input before they become part of a path.
 */
export function checkRunKey(runKey: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(runKey))
    throw new Error(`invalid run key "${runKey}": expected letters, digits, ".", "_" or "-"`);
  return runKey;
}
