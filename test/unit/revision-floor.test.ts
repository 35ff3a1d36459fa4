import { describeFloorSource, revisionFloor } from '../../src/backup/revision-floor';
import { etcdDataLost } from '../../src/health/troubles';
import type { HealthReport } from '../../src/health/types';

const backup = { key: 'lifeboat/prod/2026/01/02/snap-a.db.zst', created: '2026-01-02T10:00:00.000Z', revision: '5000' };

describe('revisionFloor: the revision etcd cannot be below unless it started over', () => {
  it('no backup, or a backup without a revision: no floor', () => {
    expect(revisionFloor({})).toBeUndefined();
    expect(revisionFloor({ newestBackup: { key: backup.key, created: backup.created } })).toBeUndefined();
    expect(revisionFloor({ recovery: { lastSuccessAt: '2026-01-03T00:00:00Z', restoredRevision: '10' } })).toBeUndefined();
  });

  it("no recovery, or one that ended before the backup was taken: the backup's revision", () => {
    expect(revisionFloor({ newestBackup: backup })).toEqual({ revision: '5000', from: 'backup', backupKey: backup.key });
    expect(revisionFloor({ newestBackup: backup, recovery: { lastSuccessAt: '2026-01-02T09:59:59Z', restoredRevision: '100' } })).toEqual({
      revision: '5000',
      from: 'backup',
      backupKey: backup.key,
    });
    // a recovery record without a success time explains nothing
    expect(revisionFloor({ newestBackup: backup, recovery: { restoredRevision: '100' } })?.revision).toBe('5000');
  });

  it('a successful recovery that ended after the backup: the revision that restore left (lower or higher)', () => {
    const recovery = { lastSuccessAt: '2026-01-02T11:00:00.000Z', restoredRevision: '1200', workflowId: 'recover-prod' };
    const floor = revisionFloor({ newestBackup: backup, recovery });
    expect(floor).toEqual({ revision: '1200', from: 'recovery', endedAt: recovery.lastSuccessAt, workflowId: 'recover-prod' });
    expect(describeFloorSource(floor!)).toBe('recovery recover-prod (ended 2026-01-02T11:00:00.000Z)');
    // with --bump-revision the restore leaves etcd above the newest backup: that is the floor then
    expect(revisionFloor({ newestBackup: backup, recovery: { ...recovery, restoredRevision: '1005000' } })?.revision).toBe('1005000');
  });

  it('a recovery since the backup without the restored revision: nothing is concluded', () => {
    expect(revisionFloor({ newestBackup: backup, recovery: { lastSuccessAt: '2026-01-02T11:00:00Z' } })).toBeUndefined();
  });

  it('names a backup floor by its key', () => {
    expect(describeFloorSource(revisionFloor({ newestBackup: backup })!)).toBe(`backup ${backup.key}`);
  });
});

describe('etcdDataLost keeps its rule (now through revisionFloor)', () => {
  const report = (revision: number | string | undefined, recovery?: HealthReport['recovery']): HealthReport => ({
    cluster: 'prod',
    node: 'cp1',
    checkedAt: '2026-01-03T00:00:00Z',
    components: [],
    certificates: [],
    problems: [],
    etcd: revision === undefined ? undefined : { revision: String(revision) },
    newestBackup: { ...backup, ageSeconds: 1, sizeBytes: 1 },
    ...(recovery ? { recovery } : {}),
  });

  it('below the backup: lost; at or above: not; no live revision: not', () => {
    expect(etcdDataLost(report(40))).toBe(true);
    expect(etcdDataLost(report(5000))).toBe(false);
    expect(etcdDataLost(report(6000))).toBe(false);
    expect(etcdDataLost(report(undefined))).toBe(false);
  });

  it('a successful recovery since the backup explains a lower revision down to what it restored', () => {
    const recovery = { inProgress: false, lastSuccessAt: '2026-01-02T11:00:00Z', restoredRevision: '1200' };
    expect(etcdDataLost(report(1300, recovery))).toBe(false);
    expect(etcdDataLost(report(40, recovery))).toBe(true);
    expect(etcdDataLost(report(40, { inProgress: false, lastSuccessAt: '2026-01-02T11:00:00Z' }))).toBe(false);
    expect(etcdDataLost(report(40, { inProgress: false, lastSuccessAt: '2026-01-02T09:00:00Z', restoredRevision: '10' }))).toBe(true);
    // without the recovery state (Temporal did not answer), no verdict
    expect(etcdDataLost({ ...report(40), unread: { recovery: 'no answer within 5 s' } })).toBe(false);
  });
});
