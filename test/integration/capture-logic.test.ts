import { ApplicationFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { Activities } from '../../activities';
import type { CaptureChangesResult } from '../../activities/continuous/capture-changes';
import { captureClusterChanges, captureStateQuery, retryAfterFailedBackupSeconds } from '../../workflows/capture-changes';
import { captureWorkflowId } from '../../workflows/run-ids';
import { startStubWorker } from '../support/worker';
import { waitFor } from '../../src/devserver/processes';

/**
 * The capture workflow's retry after a chain break whose full backup failed, with stub activities on the real dev
 * server. The soak found it (seed 20261205): a control plane destroyed and recovered in 58 s, but the capture had
 * scheduled its next try 5 minutes after the failed backup, so continuous backups stayed off for 4 minutes after the
 * recovery. The real chain break is in continuous-capture.test.ts.
 */
describe('continuous capture: the retry after a failed full backup', () => {
  let client: Client;
  let stub: Awaited<ReturnType<typeof startStubWorker>>;
  const captureCalls: number[] = [];
  const backupTries: number[] = [];
  const cluster = `cap${process.pid}`;

  const stubs: Partial<Activities> = {
    captureChanges: async ({ chain }): Promise<CaptureChangesResult> => {
      captureCalls.push(Date.now());
      expect(chain).toBeUndefined(); // after a break the next run starts without a chain
      return {
        outcome: 'needs-backup',
        reason: 'etcd-replaced',
        message: 'etcd at 127.0.0.1:2379 is at revision 240, behind the chain: it was wiped or restored',
      };
    },
    // The child backup's first step fails as a wiped etcd makes it fail (the revision floor).
    planBackup: async () => {
      backupTries.push(Date.now());
      throw ApplicationFailure.nonRetryable('etcd is at revision 240, below the floor 6000018521', 'RevisionRegression');
    },
  };

  beforeAll(async () => {
    stub = await startStubWorker(`capture-logic-${process.pid}`, stubs);
    client = stub.client;
  });
  afterAll(async () => {
    await client?.workflow
      .getHandle(captureWorkflowId(cluster))
      .terminate('test over')
      .catch(() => undefined);
    await stub?.stop();
  });

  it('waits 15 s, then 30 s, doubling to 5 minutes', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50].map(retryAfterFailedBackupSeconds)).toEqual([15, 30, 60, 120, 240, 300, 300, 300]);
    // A hand-written lastBreak from the UI cannot make it wait longer or shorter than the rules say.
    expect([0, -3, 1.5, Number.NaN, 1e9].map(retryAfterFailedBackupSeconds)).toEqual([15, 15, 15, 15, 300]);
  });

  it('tries again 15 s after the first failed backup, then 30 s, and says so in its state', async () => {
    const handle = await client.workflow.start(captureClusterChanges, {
      taskQueue: `capture-logic-${process.pid}`,
      workflowId: captureWorkflowId(cluster),
      args: [{ cluster }],
    });
    await waitFor('the second capture run', async () => captureCalls.length >= 2 || undefined, 40_000, 250);
    const gap = (captureCalls[1] - backupTries[0]) / 1000;
    expect(gap).toBeGreaterThanOrEqual(14);
    expect(gap).toBeLessThan(25);
    await waitFor('the second failed backup', async () => backupTries.length >= 2 || undefined, 20_000, 250);
    const state = await waitFor(
      'the capture to wait for its third try',
      async () =>
        ((s) => (s.phase === 'waiting-to-retry' && s.lastBreak?.failedBackups === 2 ? s : undefined))(
          await client.workflow.getHandle(handle.workflowId).query(captureStateQuery),
        ),
      20_000,
      250,
    );
    expect(state.lastBreak).toMatchObject({ reason: 'etcd-replaced', failedBackups: 2 });
    expect(state.lastBreak?.backupError).toMatch(/Child Workflow execution failed|RevisionRegression|floor/);
    expect(backupTries).toHaveLength(2);
  }, 90_000);
});
