import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTemporalDevServer } from '../src/devserver/temporal';
import { requireBinary, serverBinaries } from '../src/devserver/binaries';
import { startMinio } from '../sandbox/minio';
import { freePort } from '../src/devserver/processes';
import type { TestBedState } from './support/bed';

/** One Temporal dev server and one MinIO for the whole run (real servers, loopback, free ports). */
export default async function globalSetup(): Promise<void> {
  const bins = await serverBinaries();
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-testbed-'));
  const [temporal, minio] = await Promise.all([
    requireBinary(bins.temporal, 'temporal CLI').then(async (binary) =>
      // With its web UI: test/integration/temporal-ui.test.ts drives it in a real browser.
      startTemporalDevServer({
        binary,
        port: await freePort(),
        uiPort: await freePort(),
        logFile: join(dir, 'temporal.log'),
        startTimeoutMs: 120_000,
      }),
    ),
    requireBinary(bins.minio, 'MinIO').then((binary) => startMinio(binary, join(dir, 'minio'))),
  ]);
  const state: TestBedState = {
    dir,
    temporalAddress: temporal.address,
    temporalUiUrl: temporal.uiUrl!,
    minio: {
      endpoint: minio.endpoint,
      region: minio.region,
      accessKeyId: minio.accessKeyId,
      secretAccessKey: minio.secretAccessKey,
      pid: minio.process.child.pid!,
    },
  };
  const stateFile = join(dir, 'state.json');
  await writeFile(stateFile, JSON.stringify(state, null, 2));
  process.env.LIFEBOAT_TEST_BED = stateFile;
  (globalThis as Record<string, unknown>).__lifeboatTestBed = { temporal, minio, dir };
}
