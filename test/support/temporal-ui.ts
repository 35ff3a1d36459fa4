import { chromium, type Browser, type Page, type Request, type Response } from 'playwright-core';
import { testBed } from './bed';
import { browserNet } from './browser-netns';

/**
 * Drives the dev server's Temporal UI (2.42) in Debian's chromium, as an operator would. Selectors are the UI's own
 * ids and test ids; see the field notes' Temporal UI section.
 */
export async function openBrowser(origins: readonly string[] = [testBed().temporalUiUrl]): Promise<Browser> {
  // No browser download is possible here: scripts/servers.sh installs Debian's chromium. It runs in a network
  // namespace of its own, reaching only `origins` (browser-netns.ts says why).
  const net = await browserNet(origins, process.env.LIFEBOAT_CHROMIUM ?? '/usr/bin/chromium');
  try {
    const browser = await chromium.launch({ executablePath: net.chromium, headless: true });
    browser.once('disconnected', () => void net.close());
    return browser;
  } catch (err) {
    await net.close();
    throw err;
  }
}

/** A page of the test bed's UI, or of another dev server's (`base`, e.g. one `npm start` started). */
export function uiUrl(path: string, base = testBed().temporalUiUrl): string {
  return `${base}/namespaces/default${path}`;
}

/** Fills the start-workflow form (prefilled by its query parameters) with one JSON input and presses Start. */
export async function startFromForm(
  page: Page,
  o: { workflowId: string; taskQueue: string; workflowType: string; input: unknown; base?: string },
): Promise<void> {
  const q = new URLSearchParams({ workflowId: o.workflowId, taskQueue: o.taskQueue, workflowType: o.workflowType });
  // What went wrong on the way, for the error below: the form failed to appear once in a CI run (2026-12-04, not
  // reproduced in three runs on a machine kept busy), with nothing to tell why.
  const trouble: string[] = [];
  const onFailed = (r: Request) => trouble.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText ?? 'failed'}`);
  const onResponse = (r: Response) => {
    if (r.status() >= 400) trouble.push(`${r.request().method()} ${r.url()}: HTTP ${r.status()}`);
  };
  const editor = page.locator('.cm-content').first();
  page.on('requestfailed', onFailed);
  page.on('response', onResponse);
  try {
    await page.goto(uiUrl(`/workflows/start-workflow?${q.toString()}`, o.base));
    await editor.waitFor({ timeout: 30_000 }).catch(async (err: Error) => {
      const text = (
        await page
          .locator('body')
          .innerText()
          .catch(() => '')
      )
        .replace(/\s+/g, ' ')
        .slice(0, 600);
      throw new Error(
        `the start-workflow form did not appear (${err.message.split('\n')[0]}): page ${page.url()} titled "${await page.title()}" shows "${text}"; requests that failed: ${trouble.join('; ') || 'none'}`,
      );
    });
  } finally {
    page.off('requestfailed', onFailed);
    page.off('response', onResponse);
  }
  await editor.click();
  await editor.fill(JSON.stringify(o.input));
  // The first click while the editor has focus only blurs it: leave the editor first.
  await page.locator('#workflowType').click();
  await page.getByTestId('start-workflow-button').click();
}

/**
 * The run's page: `More Actions` > `Send a Signal`, the signal's name and its one JSON argument, Submit. While a
 * worker runs, the UI learns the workflow's signals (approve, reject) from it and offers them in a list.
 * `beforeSubmit` sees the filled dialog (docs:screenshots takes its picture there).
 */
export async function signalFromPage(
  page: Page,
  workflowId: string,
  signal: string,
  arg: unknown,
  beforeSubmit?: (page: Page) => Promise<void>,
): Promise<void> {
  await page.goto(uiUrl(`/workflows/${encodeURIComponent(workflowId)}`));
  await page.getByRole('button', { name: 'More Actions' }).first().click();
  await page.locator('[data-testid=signal-button]:visible').first().click();
  const dialog = page.locator('dialog[open]');
  await dialog.getByTestId('signal-select-button').click();
  await dialog.getByRole('option', { name: signal, exact: true }).click();
  const editor = dialog.locator('.cm-content').first();
  await editor.click();
  await editor.fill(JSON.stringify(arg));
  await dialog.getByText('Data').first().click(); // leave the editor: the first click on Submit would only blur it
  await beforeSubmit?.(page);
  await dialog.getByTestId('confirm-modal-button').click();
}
