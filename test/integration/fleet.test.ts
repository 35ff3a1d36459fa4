import { CreateBucketCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { listObjects } from '../../src/backup/catalog';
import { loadConfigFile } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { waitFor, type ManagedProcess } from '../../src/devserver/processes';
import { syncSchedules, scheduleIdOf } from '../../src/schedules/backup-schedules';
import { healthScheduleIdOf } from '../../src/schedules/health-schedules';
import { connectClient } from '../../src/temporal/connect';
import { siteTaskQueue } from '../../src/temporal/connection';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { fillEtcd } from '../../sandbox/fill';
import { backupCluster } from '../../workflows';
import { keyFile, withBackup } from '../support/backups';
import { minioClient, minioStorage } from '../support/bed';
import { runCli } from '../support/cli';
import { workerProcess } from '../support/worker-process';
import { identityOf, startedActivity } from '../support/kill';

/**
 * A fleet's workers as users run them, each its own process on one Temporal and one bucket: clusters routed by site
 * (a site's runs only ever reach that site's workers, whoever starts them), and two workers sharing a site's queue,
 * one of them SIGKILLed mid-backup: the other finishes the run, within the step's heartbeat timeout.
 */
const BUCKET = 'fleet';
const EAST = 'fleet-east';
const WEST = 'fleet-west';
/** The transfer steps' heartbeat timeout (workflows/activity-options.ts): how long a lost worker goes unnoticed. */
const HEARTBEAT_TIMEOUT_S = 30;

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** The identities of the workers that started anything of this run: workflow tasks and activities. */
function workersOf(history: History): Set<string> {
  const ids = new Set<string>();
  for (const e of history.events ?? []) {
    const identity = e.workflowTaskStartedEventAttributes?.identity ?? e.activityTaskStartedEventAttributes?.identity;
    if (identity) ids.add(identity);
  }
  return ids;
}

describe("a fleet: clusters routed to their site's workers, and a second worker taking over a killed one's backup", () => {
  let cluster: SandboxCluster;
  let config: Config;
  let configFile: string;
  let client: Client;
  let closeClient: () => Promise<void>;
  let launch: Awaited<ReturnType<typeof workerProcess>>['launch'];
  /** The east site's worker of the first case; the second adds another. */
  let eastWorker: ManagedProcess;
  const running: ManagedProcess[] = [];
  const s3 = minioClient();
  const start = (site: string) => {
    const p = launch({}, ['--site', site]);
    running.push(p);
    return p;
  };

  beforeAll(async () => {
    const key = await keyFile();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: 'fleet', etcdLine: '3.6', withApiserver: false, storage: minioStorage(BUCKET) });
    await fillEtcd(cluster, 3, 1024, { prefix: '/small/' }); // an empty etcd is refused as a backup
    // Two clusters of two sites; the same sandbox node behind both (what is measured is who runs them).
    const base = withBackup(cluster, { encryptionKey: 'k1', compression: 'none' });
    const w = await workerProcess(
      'fleet',
      [
        { ...base, name: EAST, site: 'east' },
        { ...base, name: WEST, site: 'west' },
      ],
      key.path,
    );
    launch = w.launch;
    configFile = w.configFile;
    config = await loadConfigFile(configFile);
    ({ client, close: closeClient } = await connectClient(config));
  });
  afterAll(async () => {
    for (const id of [scheduleIdOf(EAST), scheduleIdOf(WEST), healthScheduleIdOf(EAST), healthScheduleIdOf(WEST)])
      await client?.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    for (const p of running) await p.stop();
    await closeClient?.();
    await cluster?.destroy();
    s3.destroy();
  });

  it("runs each cluster's scheduled and CLI-started backups only on its own site's worker", async () => {
    const east = (eastWorker = start('east'));
    let west = start('west');
    const sync = await syncSchedules(client, config);
    expect(sync.created).toEqual(expect.arrayContaining([scheduleIdOf(EAST), scheduleIdOf(WEST)]));
    const scheduled = async (name: string) => {
      const schedule = client.schedule.getHandle(scheduleIdOf(name));
      await schedule.trigger();
      const workflowId = await waitFor(
        `the ${name} schedule to start a backup`,
        async () => (await schedule.describe()).info.recentActions[0]?.action.workflow.workflowId,
        30_000,
        200,
      );
      const handle = client.workflow.getHandle(workflowId);
      await handle.result();
      return workersOf(await handle.fetchHistory());
    };
    expect(await scheduled(EAST)).toEqual(new Set([identityOf(east)]));
    expect(await scheduled(WEST)).toEqual(new Set([identityOf(west)]));

    // West's worker down: a backup of a west cluster, started from the CLI, waits for it; east's never touches it.
    await west.stop();
    const cli = await runCli(['--config', configFile, 'backup', 'now', WEST]);
    expect(cli).toMatchObject({ code: 0 });
    const workflowId = /started (\S+)/.exec(cli.stdout)![1];
    const handle = client.workflow.getHandle(workflowId);
    expect((await handle.describe()).taskQueue).toBe(siteTaskQueue(config.temporal.taskQueue, 'west'));
    await new Promise((r) => setTimeout(r, 5_000));
    expect(workersOf(await handle.fetchHistory())).toEqual(new Set());
    west = start('west');
    await handle.result();
    expect(workersOf(await handle.fetchHistory())).toEqual(new Set([identityOf(west)]));
  });

  it("a second worker of the site finishes a backup whose worker was SIGKILLed mid-upload, within the step's heartbeat timeout", async () => {
    // ~80 MiB, so the upload lasts long enough to be interrupted.
    await fillEtcd(cluster, 80, 1024 * 1024);
    const east = [eastWorker, start('east')];
    const handle = await client.workflow.start(backupCluster, {
      taskQueue: siteTaskQueue(config.temporal.taskQueue, 'east'),
      workflowId: `fleet-takeover-${Date.now()}`,
      args: [{ cluster: EAST }],
    });
    const upload = () => startedActivity(handle, 'uploadSnapshot');
    const first = await waitFor('the upload to run', upload, 180_000, 50);
    await waitFor(
      'a multipart upload in progress',
      async () => ((await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? []).length > 0,
      60_000,
      50,
    );
    const victim = east.find((p) => identityOf(p) === first.lastWorkerIdentity)!;
    const survivor = east.find((p) => p !== victim)!;
    expect(victim).toBeDefined();
    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    await victim.exited;
    const retried = await waitFor(
      'another attempt of the upload to start',
      async () => {
        const a = await upload();
        return a && (a.attempt ?? 1) > 1 ? a : undefined;
      },
      (HEARTBEAT_TIMEOUT_S + 30) * 1000,
      200,
    );
    const takeoverS = (Number(retried.lastStartedTime!.seconds) * 1000 + (retried.lastStartedTime!.nanos ?? 0) / 1e6 - killedAt) / 1000;
    console.log(`takeover_s=${takeoverS.toFixed(1)} (kill -> the other worker's attempt started)`);
    expect(retried.lastWorkerIdentity).toBe(identityOf(survivor));
    expect(takeoverS).toBeLessThanOrEqual(HEARTBEAT_TIMEOUT_S + 10);
    const result = await handle.result();
    expect(result.plainBytes).toBeGreaterThan(70 * 1024 * 1024);
    // The upload's recorded attempt, and every step after it, ran on the survivor.
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const uploadScheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'uploadSnapshot')!;
    const uploadStarted = events.find(
      (e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(uploadScheduled.eventId),
    )!;
    expect(uploadStarted.activityTaskStartedEventAttributes!.identity).toBe(identityOf(survivor));
    const after = events.filter((e) => Number(e.eventId) > Number(uploadStarted.eventId));
    expect(workersOf({ events: after })).toEqual(new Set([identityOf(survivor)]));
    expect(((await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? []).length).toBe(0);
    // One backup, whole: the killed attempt's upload left no object of its own beside it.
    const base = result.snapshotKey.replace(/\.db.*$/, '');
    expect((await listObjects(s3, BUCKET, base)).map((o) => o.key).sort()).toEqual(
      [result.snapshotKey, result.controlPlaneFilesKey, result.manifestKey].sort(),
    );
  });
});
