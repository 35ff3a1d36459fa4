import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { stepTimelineSvg } from '../../src/recovery/step-timeline';
import { runMetadata } from '../../src/temporal/run-metadata';
import { drillRestore, progressQuery, recoverCluster } from '../../workflows';
import { recoveryWorkflowId } from '../../workflows/run-ids';
import globalSetup from '../global-setup';
import globalTeardown from '../global-teardown';
import { keyFile, runBackup, withBackup } from '../support/backups';
import { minioClient, minioStorage } from '../support/bed';
import { drillConfigFor, seedObjects } from '../support/drills';
import { openBrowser, signalFromPage, uiUrl } from '../support/temporal-ui';
import { startTestWorker, type RunningWorker } from '../support/worker';

/**
 * `npm run docs:screenshots`: the pictures in docs/ from a real run in the test bed, so they are never stale. A
 * sandbox cluster (etcd 3.6 + kube-apiserver) and a worker; a backup; a restore drill; a recovery that waits for
 * approval, approved with the Temporal UI's signal action; the UI's pages of those runs saved by the browser tests'
 * chromium into docs/images/, with the recovery's step timeline (SVG). Not part of npm test.
 */

const CLUSTER = 'prod';
const BUCKET = 'docs-screenshots';
const out = resolve(__dirname, '..', '..', '..', 'docs', 'images');

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The run's page once it shows `text` (the UI renders runs and results asynchronously). */
async function runPage(page: Page, workflowId: string, text: string): Promise<void> {
  await page.goto(uiUrl(`/workflows/${encodeURIComponent(workflowId)}`));
  await page.getByText(text, { exact: false }).first().waitFor({ state: 'visible', timeout: 30_000 });
}

/**
 * One of the run page's tabs, once it shows `text`: in the page, or in one of the frames the UI renders markdown in
 * (a run's summary and details).
 */
async function tab(page: Page, name: string, text: string): Promise<void> {
  await page.getByRole('link', { name, exact: true }).or(page.getByRole('tab', { name })).first().click();
  await until(
    `the ${name} tab to show "${text}"`,
    async () => {
      for (const frame of page.frames()) if ((await frame.locator('body').innerText()).includes(text)) return true;
      return undefined;
    },
    30_000,
  );
  await page.waitForTimeout(500); // the frames' own layout
}

async function save(page: Page, name: string): Promise<void> {
  const file = join(out, name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`wrote ${file}`);
}

async function main(): Promise<void> {
  await globalSetup();
  let cluster: SandboxCluster | undefined;
  let worker: RunningWorker | undefined;
  const browser = await openBrowser();
  const s3 = minioClient();
  try {
    await mkdir(out, { recursive: true });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const key = await keyFile();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: CLUSTER, etcdLine: '3.6', withApiserver: true, storage: minioStorage(BUCKET) });
    const api = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
    worker = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1' })], {
      encryptionKeys: { k1: { file: key.path } },
      drill: await drillConfigFor('screenshots', ['3.6']),
    });
    const { client, taskQueue } = worker;
    await seedObjects(api, 5);
    const backup = await runBackup(client, taskQueue, CLUSTER);
    console.log(`backup ${backup.snapshotKey}`);

    // A restore drill and its report.
    const drillId = `drill-${CLUSTER}-${Date.now()}`;
    await client.workflow.execute(drillRestore, {
      taskQueue,
      workflowId: drillId,
      args: [{ cluster: CLUSTER, reason: 'weekly drill' }],
      ...runMetadata({
        what: `restore drill of ${CLUSTER}`,
        cluster: CLUSTER,
        backup: 'latest',
        reason: 'weekly drill',
        startedBy: 'docs',
      }),
    });
    await runPage(page, drillId, '"result": "passed"');
    await save(page, 'drill-report.png');

    // A recovery that waits for a person, as `lifeboat restore` starts it.
    const workflowId = recoveryWorkflowId(CLUSTER);
    const reason = 'etcd data lost on cp1';
    const handle = await client.workflow.start(recoverCluster, {
      taskQueue,
      workflowId,
      args: [{ cluster: CLUSTER, approval: 'required', reason }],
      ...runMetadata({ what: `recovery of ${CLUSTER}`, cluster: CLUSTER, backup: 'latest', reason, startedBy: 'alice' }),
    });
    await until('the recovery to wait for approval', async () =>
      (await handle.query(progressQuery)).state === 'awaiting-approval' ? true : undefined,
    );
    await signalFromPage(page, workflowId, 'approve', { by: 'alice', reason: 'checked the plan' }, async (p) =>
      save(p, 'approval-signal.png'),
    );
    const result = await handle.result();
    if (result.outcome !== 'restored') throw new Error(`the recovery ended ${result.outcome}, not restored`);
    await runPage(page, workflowId, '"outcome": "restored"');
    await save(page, 'recovery-run.png');
    // Its one-line summary and details (who started it, from which backup, why), then its search attributes.
    await tab(page, 'User Metadata', 'started by');
    await save(page, 'recovery-summary.png');
    await tab(page, 'Search Attributes', 'LifeboatOutcome');
    await save(page, 'recovery-search-attributes.png');
    const timeline = join(out, 'recovery-timeline.svg');
    await writeFile(timeline, stepTimelineSvg(result.steps, `Recovery of ${CLUSTER}: ${result.outcome}`));
    console.log(`wrote ${timeline}`);
  } finally {
    await browser.close();
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
    await globalTeardown();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);
