import type { ActivityDeps } from './deps';
import { classifiedAll } from './errors';
import { probeNode } from './probe-node';
import { resolveCluster } from './resolve-cluster';
import { confirmObjects, discardIncompleteBackup, removeNodeRunFiles, writeManifest } from './backup/finish';
import { inspectSnapshot } from './backup/inspect-snapshot';
import { planBackup } from './backup/plan-backup';
import { applyRetention } from './backup/retention';
import { takeSnapshot } from './backup/take-snapshot';
import { streamSnapshot } from './backup/stream-snapshot';
import { streamWhileSaving } from './backup/stream-while-saving';
import { uploadControlPlaneFiles, uploadSnapshot } from './backup/upload';
import { pauseBackups, resumeBackups } from './recovery/backup-schedule';
import { restoreEtcdData, startControlPlane, stopControlPlane } from './recovery/control-plane';
import { fetchSnapshot, restoreControlPlaneFiles } from './recovery/fetch';
import { planRecovery } from './recovery/plan-recovery';
import { rollbackRecovery } from './recovery/rollback';
import { checkHealth } from './health/check-health';
import { verifyApi } from './recovery/verify-api';
import { diagnoseCluster } from './response/diagnose';
import { notify } from './response/notify';
import { planDrill } from './drill/plan-drill';
import { cleanupDrill, runDrill } from './drill/run-drill';
import { recordDrill } from './drill/record-drill';
import { responsePolicy } from './response/policy';
import { importSnapshot, planImport, removeStagedImport } from './backup/import';
import { claimHolder } from './claim-holder';
import { captureChanges } from './continuous/capture-changes';
import { buildPoint, planPointInTime } from './continuous/point';

/**
 * Every activity the worker registers, bound to its dependencies. Workflows import only the type. Each goes through
 * classified (./errors.ts) here, once: a failure retrying cannot fix becomes a typed, non-retryable one.
 */
export function createActivities(deps: ActivityDeps) {
  return classifiedAll({
    probeNode: probeNode(deps),
    planPointInTime: planPointInTime(deps),
    buildPoint: buildPoint(deps),
    resolveCluster: resolveCluster(deps),
    planBackup: planBackup(deps),
    takeSnapshot: takeSnapshot(deps),
    streamSnapshot: streamSnapshot(deps),
    streamWhileSaving: streamWhileSaving(deps),
    inspectSnapshot: inspectSnapshot(deps),
    uploadSnapshot: uploadSnapshot(deps),
    uploadControlPlaneFiles: uploadControlPlaneFiles(deps),
    confirmObjects: confirmObjects(deps),
    writeManifest: writeManifest(deps),
    discardIncompleteBackup: discardIncompleteBackup(deps),
    removeNodeRunFiles: removeNodeRunFiles(deps),
    applyRetention: applyRetention(deps),
    planRecovery: planRecovery(deps),
    pauseBackups: pauseBackups(deps),
    resumeBackups: resumeBackups(deps),
    fetchSnapshot: fetchSnapshot(deps),
    restoreControlPlaneFiles: restoreControlPlaneFiles(deps),
    stopControlPlane: stopControlPlane(deps),
    restoreEtcdData: restoreEtcdData(deps),
    startControlPlane: startControlPlane(deps),
    verifyApi: verifyApi(deps),
    rollbackRecovery: rollbackRecovery(deps),
    checkHealth: checkHealth(deps),
    responsePolicy: responsePolicy(deps),
    diagnoseCluster: diagnoseCluster(deps),
    notify: notify(deps),
    planDrill: planDrill(deps),
    runDrill: runDrill(deps),
    cleanupDrill: cleanupDrill(deps),
    recordDrill: recordDrill(deps),
    planImport: planImport(deps),
    importSnapshot: importSnapshot(deps),
    removeStagedImport: removeStagedImport(deps),
    claimHolder: claimHolder(deps),
    captureChanges: captureChanges(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps };
export type { NodeProbe, ProbeNodeInput } from './probe-node';
export type { ClusterSummary } from './resolve-cluster';
export type { CheckHealthInput } from './health/check-health';
