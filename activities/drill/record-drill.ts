import { findCluster } from '../../src/config/load';
import { loadEncryptionKey } from '../../src/backup/keyring';
import { writeDrillReport, type DrillReport } from '../../src/drill/report';
import { recordDrillMetrics } from '../../src/metrics/drill-metrics';
import { s3ClientFor } from '../../src/storage/s3-client';
import { engineVersion } from '../../src/version';
import type { ActivityDeps } from '../deps';

export interface RecordDrillInput {
  cluster: string;
  /** The report to write beside the backup; absent when the drill failed before it had a backup. */
  report?: Omit<DrillReport, 'format' | 'engineVersion'>;
  passed: boolean;
  durationSeconds: number;
}

/** Writes `<base>.drill.json` beside the drilled backup and sets the drill metrics on this worker. */
export function recordDrill(deps: ActivityDeps) {
  return async (input: RecordDrillInput): Promise<{ reportKey?: string }> => {
    const cluster = findCluster(deps.config, input.cluster);
    let reportKey: string | undefined;
    if (input.report) {
      const s3 = await s3ClientFor(cluster.storage);
      try {
        const keyId = cluster.backup.encryptionKey;
        reportKey = await writeDrillReport(
          s3,
          cluster.storage.bucket,
          { format: 'lifeboat-drill/v1', ...input.report, engineVersion: engineVersion() },
          keyId ? { key: await loadEncryptionKey(deps.config, keyId), keyId } : undefined,
        );
      } finally {
        s3.destroy();
      }
    }
    recordDrillMetrics(cluster.name, input.passed, input.durationSeconds, new Date());
    return { reportKey };
  };
}
