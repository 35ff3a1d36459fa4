import { clusterSchema } from '../../src/config/schema';
import { waitFor } from '../../src/devserver/processes';
import { formatLastRun, lastRunOf } from '../../src/schedules/last-result';
import { scheduleFor, scheduleIdOf, syncBackupSchedules } from '../../src/schedules/backup-schedules';
import { healthScheduleIdOf } from '../../src/schedules/health-schedules';
import { minioStorage } from '../support/bed';
import { startTestWorker, type RunningWorker } from '../support/worker';

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMbq1c5ZQk6pVZr0yQdX3f0b2m5M6mKk0B8w3o3W2w2a';

describe('schedules', () => {
  let worker: RunningWorker;
  const cluster = `sched-${process.pid}`;
  const clusterNamed = (name: string) =>
    clusterSchema.parse({
      name,
      nodes: [{ name: 'cp1', host: '127.0.0.1', port: 1, hostKey: HOST_KEY }],
      storage: minioStorage('sched'),
    });
  beforeAll(async () => {
    // No encryption key and no allowUnencrypted: a backup fails at its plan step, on the worker, at once.
    worker = await startTestWorker([
      clusterSchema.parse({
        name: cluster,
        nodes: [{ name: 'cp1', host: '127.0.0.1', port: 1, hostKey: HOST_KEY }],
        storage: minioStorage('sched'),
      }),
    ]);
  });
  afterAll(async () => {
    for (const id of [
      scheduleIdOf(cluster),
      healthScheduleIdOf(cluster),
      scheduleIdOf(`gone-${process.pid}`),
      scheduleIdOf(`theirs-${process.pid}`),
    ])
      await worker?.client.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    await worker?.stop();
  });

  it('sync targets the queue the worker polls (LIFEBOAT_TASK_QUEUE over temporal.taskQueue); list shows how the last run ended', async () => {
    const { client } = worker;
    // The config names a queue nobody polls; the environment names the worker's, as it does for the worker itself.
    const config = { ...worker.config, temporal: { ...worker.config.temporal, taskQueue: 'nobody-polls-this' } };
    await syncBackupSchedules(client, config, { env: { LIFEBOAT_TASK_QUEUE: worker.taskQueue } });
    const schedule = client.schedule.getHandle(scheduleIdOf(cluster));
    expect((await schedule.describe()).action).toMatchObject({ taskQueue: worker.taskQueue });
    expect((await client.schedule.getHandle(healthScheduleIdOf(cluster)).describe()).action).toMatchObject({ taskQueue: worker.taskQueue });
    await client.schedule.getHandle(healthScheduleIdOf(cluster)).pause('not under test');

    expect(formatLastRun(await lastRunOf(client, await schedule.describe()))).toBe('never');
    await schedule.trigger();
    // The run fails on the worker at its plan step: only a worker polling the schedule's queue could fail it so.
    const last = await waitFor(
      'the triggered backup to fail',
      async () => {
        const run = await lastRunOf(client, await schedule.describe());
        return run?.status === 'FAILED' ? run : undefined;
      },
      60_000,
      300,
    );
    expect(last.error).toMatch(new RegExp(`cluster "${cluster}", step plan: .*allowUnencrypted`));
    expect(formatLastRun(last)).toMatch(/^\d{4}-.*Z FAILED: cluster ".*", step plan/);

    // Who started it and why, on the run itself, for the UI.
    const d = await client.workflow.getHandle(last.workflowId).describe();
    expect(await d.staticSummary()).toBe(`scheduled backup of ${cluster}`);
    expect(await d.staticDetails()).toContain(`**started by** schedule ${scheduleIdOf(cluster)}`);
  });

  it("--prune removes this engine's schedules of clusters that left the config, never another engine's in the namespace", async () => {
    const { client } = worker;
    const env = { LIFEBOAT_TASK_QUEUE: worker.taskQueue };
    // A cluster this engine had (on its own queue), and one of another engine's config (its own queue), both paused.
    const gone = { ...scheduleFor(clusterNamed(`gone-${process.pid}`), worker.taskQueue), state: { paused: true } };
    const theirs = { ...scheduleFor(clusterNamed(`theirs-${process.pid}`), `other-engine-${process.pid}`), state: { paused: true } };
    await client.schedule.create(gone);
    await client.schedule.create(theirs);

    const dry = await syncBackupSchedules(client, worker.config, { env });
    expect(dry.orphaned).toContain(gone.scheduleId);
    expect(dry.orphaned).not.toContain(theirs.scheduleId);
    expect(dry.foreign).toContainEqual({ id: theirs.scheduleId, taskQueue: `other-engine-${process.pid}` });

    const pruned = await syncBackupSchedules(client, worker.config, { env, prune: true });
    expect(pruned.removed).toContain(gone.scheduleId);
    expect(pruned.removed).not.toContain(theirs.scheduleId);
    await expect(client.schedule.getHandle(gone.scheduleId).describe()).rejects.toThrow(/not found/i);
    expect((await client.schedule.getHandle(theirs.scheduleId).describe()).action).toMatchObject({
      taskQueue: `other-engine-${process.pid}`,
    });
  });
});
