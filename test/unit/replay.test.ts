import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { workflowsPath } from '../../src/temporal/worker';
import { payloadConverterPath } from '../../src/temporal/data-converter';

/**
 * Recorded histories of real runs (test/histories, recorded with LIFEBOAT_RECORD_HISTORIES by the recovery and
 * backup integration tests) must replay against the current workflow code: a change that would break running
 * workflows fails here, before it reaches a worker with recoveries in flight.
 */
describe('workflow replay', () => {
  it('replays every recorded history without non-determinism', async () => {
    const dir = join(__dirname, '../histories');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
    expect(files.length).toBeGreaterThan(0);
    const histories = await Promise.all(
      // `<workflow id>.<n>.json` replays as that workflow id (a workflow that checks its own id, like capture-<cluster>,
      // sees the id it ran under); any other name is its own id.
      files.map(async (f) => ({
        workflowId: /^(.+)\.\d+\.json$/.exec(f)?.[1] ?? f,
        history: historyFromJSON(JSON.parse(await readFile(join(dir, f), 'utf8'))),
      })),
    );
    const failures: string[] = [];
    for await (const r of Worker.runReplayHistories({ workflowsPath, dataConverter: { payloadConverterPath } }, histories)) {
      if (r.error) failures.push(`${r.workflowId}: ${String(r.error)}`);
    }
    expect(failures).toEqual([]);
  });
});
