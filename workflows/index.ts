// Workflow code only: deterministic, bundled by the worker. Import activities and clients as types.
export { checkCluster } from './check-cluster';
export { backupCluster } from './backup-cluster';
export { recoverCluster, approveSignal, rejectSignal, progressQuery } from './recover-cluster';
