import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '@jest/types';
import { startTemporalDevServer, type DevServer } from '../src/devserver/temporal';
import { requireBinary, serverBinaries } from '../src/devserver/binaries';
import { startMinio, type MinioServer } from '../sandbox/minio';
import { freePort } from '../src/devserver/processes';
import type { TestBedState } from './support/bed';
import { writeRunBundles } from './support/worker';

/**
 * A Temporal dev server and a MinIO (real servers, loopback, free ports) for each jest worker, shared by the files
 * that worker runs one after the other. Files that run side by side never share a namespace or a bucket, so their
 * workflow ids, schedules, claims and search-attribute queries (all named after the cluster) cannot meet.
 * `globalConfig` is jest's (its worker count); the screenshot script calls this without it, for one lane.
 */
export default async function globalSetup(globalConfig?: Pick<Config.GlobalConfig, 'maxWorkers'>): Promise<void> {
  const bins = await serverBinaries();
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-testbed-'));
  const lanes = Math.max(1, globalConfig?.maxWorkers ?? 1);
  const [started] = await Promise.all([
    Promise.all([...Array(lanes).keys()].map((i) => startLane(bins, join(dir, `lane-${i + 1}`)))),
    // Once for the run, not once per test file (test/support/worker.ts).
    writeRunBundles(dir),
  ]);
  const stateFile = join(dir, 'state.json');
  await writeFile(
    stateFile,
    JSON.stringify(
      started.map((s) => s.state),
      null,
      2,
    ),
  );
  process.env.LIFEBOAT_TEST_BED = stateFile;
  (globalThis as Record<string, unknown>).__lifeboatTestBed = { servers: started.flatMap((s) => [s.temporal, s.minio]), dir };
}

async function startLane(
  bins: Awaited<ReturnType<typeof serverBinaries>>,
  dir: string,
): Promise<{ state: TestBedState; temporal: DevServer; minio: MinioServer }> {
  await mkdir(dir, { recursive: true });
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
  return { state, temporal, minio };
}
