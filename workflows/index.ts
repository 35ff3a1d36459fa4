// Workflow code only: deterministic, bundled by the worker. Import activities and clients as types.
export { checkCluster } from './check-cluster';
export { checkClusterHealth } from './check-cluster-health';
export { backupCluster } from './backup-cluster';
export { recoverCluster, approveSignal, rejectSignal, progressQuery } from './recover-cluster';
export { respondToAlert, alertSignal, responseQuery } from './respond-to-alert';
export { drillRestore } from './drill-restore';
export { importBackup } from './import-backup';
export { holdClaim } from './claim';
export { captureClusterChanges, captureStateQuery } from './capture-changes';
