import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Client, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { Browser, Page } from 'playwright-core';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { OUTCOME } from '../../src/temporal/search-attributes';
import { progressQuery } from '../../workflows';
import type { RecoverClusterResult } from '../../workflows/recover-cluster';
import { minioClient, minioStorage, testBed } from '../support/bed';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { nodeFingerprint } from '../support/recovery';
import { openBrowser, signalFromPage, startFromForm, uiUrl } from '../support/temporal-ui';
import { startTestWorker, type RunningWorker } from '../support/worker';

const BUCKET = 'temporal-ui';
const CLUSTER = 'ui';

/** Waits until the server has the run the form started: the UI shows a toast and stays on the page. */
async function started(client: Client, workflowId: string): Promise<WorkflowHandle> {
  const handle = client.workflow.getHandle(workflowId);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const d = await handle.describe().catch(() => undefined);
    if (d) return client.workflow.getHandle(workflowId, d.runId);
    if (Date.now() > deadline) throw new Error(`the UI's start form did not start ${workflowId}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Waits until the page shows the text (the UI renders runs and results asynchronously). */
async function shows(page: Page, text: string): Promise<void> {
  await page.getByText(text, { exact: false }).first().waitFor({ state: 'visible', timeout: 30_000 });
}

/** The ids the visibility store returns for a query, once it has caught up with `expected`. */
async function listed(client: Client, query: string, expected: string): Promise<string[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ids: string[] = [];
    for await (const w of client.workflow.list({ query })) ids.push(w.workflowId);
    if (ids.includes(expected) || Date.now() > deadline) return ids;
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('operators in the Temporal UI (real browser)', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let browser: Browser;
  let page: Page;
  let backupKey: string;
  const s3 = minioClient();

  beforeAll(async () => {
    const key = await keyFile();
    [cluster, browser] = await Promise.all([
      createSandboxCluster({ name: CLUSTER, etcdLine: '3.6', withApiserver: true, storage: minioStorage(BUCKET) }),
      openBrowser(),
    ]);
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    worker = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1' })], { encryptionKeys: { k1: { file: key.path } } });
    backupKey = (await runBackup(worker.client, worker.taskQueue, CLUSTER)).snapshotKey;
  });
  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  it('a dry-run recovery started from the form returns the plan, is found by its cluster, and reads in the page', async () => {
    const workflowId = `recover-${CLUSTER}`;
    const input = { cluster: CLUSTER, dryRun: true, reason: 'checking the plan from the UI' };
    await startFromForm(page, { workflowId, taskQueue: worker.taskQueue, workflowType: 'recoverCluster', input });
    const handle = await started(worker.client, workflowId);
    const result = (await handle.result()) as RecoverClusterResult;
    expect(result).toMatchObject({ cluster: CLUSTER, outcome: 'planned', reason: input.reason });
    expect(result.plan.snapshot.key).toBe(backupKey);
    const d = await handle.describe();
    expect(d.memo).toEqual({ summary: `dry-run recovery of ${CLUSTER} from latest (in-place): ${input.reason}` });
    expect(d.typedSearchAttributes.get(OUTCOME)).toBe('planned');

    // "All recoveries of this cluster", through the client and in the UI's list with the same query.
    const query = `LifeboatCluster = '${CLUSTER}' AND LifeboatRun = 'recovery'`;
    expect(await listed(worker.client, query, workflowId)).toContain(workflowId);
    await page.goto(uiUrl(`/workflows?query=${encodeURIComponent(query)}`));
    await shows(page, workflowId);

    await page.goto(uiUrl(`/workflows/${workflowId}`));
    await shows(page, '"outcome": "planned"');
    await shows(page, backupKey);
    // The run's one-line summary, in its Memo tab.
    await page
      .getByRole('link', { name: 'Memo', exact: true })
      .or(page.getByRole('tab', { name: 'Memo' }))
      .first()
      .click();
    await shows(page, `dry-run recovery of ${CLUSTER} from latest (in-place): ${input.reason}`);
  });

  it('refuses invalid input at once, shows why in the page, and runs nothing against the node', async () => {
    const before = await nodeFingerprint(cluster.controlPlane);
    const cases = [
      {
        id: `recover-${CLUSTER}-ui-hostile`,
        input: { cluster: CLUSTER, snapshot: '$(reboot)', target: 'cp1; rm -rf /' },
        expect: 'snapshot: expected',
      },
      { id: `recover-ghost`, input: { cluster: 'ghost', dryRun: true }, expect: 'ghost' },
      // A second recovery of the cluster typed in under an id of one's own: refused, whatever the id.
      {
        id: `recover-${CLUSTER}-again`,
        input: { cluster: CLUSTER, dryRun: true },
        expect: `runs as workflow id recover-${CLUSTER}, one at a time`,
      },
    ];
    for (const c of cases) {
      await startFromForm(page, { workflowId: c.id, taskQueue: worker.taskQueue, workflowType: 'recoverCluster', input: c.input });
      const handle = await started(worker.client, c.id);
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const message = ((err as WorkflowFailedError).cause as Error).message;
      expect(message).toContain(c.expect);
      await page.goto(uiUrl(`/workflows/${c.id}`));
      await shows(page, c.expect);
    }
    // The hostile input never reached an activity: its history has no activity at all.
    const history = await worker.client.workflow.getHandle(cases[0].id).fetchHistory();
    expect(history.events!.filter((e) => e.activityTaskScheduledEventAttributes)).toEqual([]);
    expect((await worker.client.workflow.getHandle(cases[0].id).describe()).typedSearchAttributes.get(OUTCOME)).toBe('invalid-input');
    expect(await nodeFingerprint(cluster.controlPlane)).toBe(before);
  });

  it("a recovery waiting for approval is approved with the UI's signal action and restores the cluster", async () => {
    const workflowId = `recover-${CLUSTER}`;
    const input = { cluster: CLUSTER, approval: 'required', reason: 'approved in the UI' };
    await startFromForm(page, { workflowId, taskQueue: worker.taskQueue, workflowType: 'recoverCluster', input });
    const handle = await started(worker.client, workflowId);
    const deadline = Date.now() + 60_000;
    while ((await handle.query(progressQuery).catch(() => undefined))?.state !== 'awaiting-approval') {
      if (Date.now() > deadline) throw new Error('the recovery never waited for approval');
      await new Promise((r) => setTimeout(r, 250));
    }
    await signalFromPage(page, workflowId, 'approve', { by: 'alice', reason: 'checked the plan in the UI' });
    const result = (await handle.result()) as RecoverClusterResult;
    expect(result.outcome).toBe('restored');
    expect(result.approval).toMatchObject({ by: 'alice', decision: 'approved' });
    expect((await handle.describe()).typedSearchAttributes.get(OUTCOME)).toBe('restored');
    await page.goto(uiUrl(`/workflows/${workflowId}`));
    await shows(page, '"outcome": "restored"');

    // LIFEBOAT_RECORD_HISTORIES=<dir> keeps this run (labels, the UI's signal, a restore) as a replay fixture for
    // test/unit/replay.test.ts, in the temporal CLI's JSON.
    const out = process.env.LIFEBOAT_RECORD_HISTORIES;
    if (out) {
      const { stdout } = await promisify(execFile)(
        cluster.binaries.temporal,
        [
          'workflow',
          'show',
          '-w',
          workflowId,
          '-r',
          (await handle.describe()).runId,
          '--output',
          'json',
          '--address',
          testBed().temporalAddress,
        ],
        { maxBuffer: 64 << 20 },
      );
      await writeFile(join(out, 'recover-ui-approved.json'), stdout);
    }
  });
});
