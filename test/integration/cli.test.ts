import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trustedBackups, trustRulesFor } from '../../src/backup/trusted-catalog';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { scheduleIdOf } from '../../src/schedules/backup-schedules';
import { healthScheduleIdOf } from '../../src/schedules/health-schedules';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { minioClient, minioStorage } from '../support/bed';
import { keyFile, withBackup } from '../support/backups';
import { cliConfigFile, runCli } from '../support/cli';
import type { FleetStatus } from '../../src/status/fleet-status';
import { nodeFingerprint } from '../support/recovery';
import { startTestWorker, type RunningWorker } from '../support/worker';
import { progressQuery, recoverCluster } from '../../workflows';
import type { RecoverClusterResult } from '../../workflows/recover-cluster';

const BUCKET = 'cli';

/**
 * Every Temporal-connected command as a user runs it: the compiled CLI as a child process, against the dev server,
 * MinIO and a sandbox cluster with a running worker. Each checks what it printed and its exit code, and what it did
 * to the server (schedule state, the recovery's outcome) or to the node.
 */
describe('the compiled CLI against real servers (etcd 3.6 + kube-apiserver)', () => {
  let cluster: SandboxCluster;
  let worker: RunningWorker;
  let api: KubeClient;
  let config: string;
  const s3 = minioClient();
  const cli = (...args: string[]) => runCli(['--config', config, ...args]);
  const backups = async () => (await trustedBackups(s3, trustRulesFor(worker.config, worker.config.clusters[0]))).backups;
  const until = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe().catch(() => undefined);
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  const recoveryState = async () =>
    (
      await worker.client.workflow
        .getHandle('recover-cli')
        .query(progressQuery)
        .catch(() => undefined)
    )?.state;
  const configMap = (name: string) => ({ metadata: { name }, data: { name } });
  const names = async () =>
    (await api.list('/api/v1/namespaces/default/configmaps'))
      .map((c) => c.metadata.name)
      .filter((n) => !n.startsWith('kube-'))
      .sort();

  beforeAll(async () => {
    const key = await keyFile();
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-cli-'));
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({ name: 'cli', etcdLine: '3.6', withApiserver: true, storage: minioStorage(BUCKET) });
    api = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
    // A second cluster on the same node whose bucket does not exist: a backup of it fails at its plan step.
    const broken = { ...withBackup(cluster, { encryptionKey: 'k1' }, minioStorage('no-such-bucket')), name: 'nobucket' };
    worker = await startTestWorker([withBackup(cluster, { encryptionKey: 'k1' }), broken], { encryptionKeys: { k1: { file: key.path } } });
    config = await cliConfigFile(dir, worker.config);
  });
  afterAll(async () => {
    for (const id of [scheduleIdOf('cli'), healthScheduleIdOf('cli'), scheduleIdOf('nobucket'), healthScheduleIdOf('nobucket')])
      await worker?.client.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  it('check before any backup: the worker checks the cluster, every component up, exit 1 naming the missing backup', async () => {
    const r = await cli('check', 'cli');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    const id = /^started (health-cli-manual-\S+)$/m.exec(r.stdout)?.[1];
    expect(id).toBeDefined();
    for (const component of ['kube-apiserver', 'etcd', 'kube-scheduler', 'kube-controller-manager', 'node'])
      expect(r.stdout).toMatch(new RegExp(`^  ${component} +up `, 'm'));
    expect(r.stdout).toMatch(/^problems \(1\):\n {2}- backups: none found for cluster "cli"/m);
    // The check ran on the engine, as a run of its own: the worker's workflow, labelled with its outcome.
    const run = await worker.client.workflow.getHandle(id!).describe();
    expect(run.type).toBe('checkClusterHealth');
    expect(run.status.name).toBe('COMPLETED');
    expect(run.searchAttributes).toMatchObject({ LifeboatCluster: ['cli'], LifeboatOutcome: ['unhealthy'] });

    const unknown = await cli('check', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown cluster "nope"/);
  });

  it('check with no worker on the task queue: exit 1 after --timeout, saying what is missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-cli-'));
    const queue = `no-worker-${Date.now()}`;
    const elsewhere = await cliConfigFile(dir, { ...worker.config, temporal: { ...worker.config.temporal, taskQueue: queue } });
    const r = await runCli(['--config', elsewhere, 'check', 'cli', '--timeout', '3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^check of cli: no result within 3 s; is a worker running on task queue "${queue}"`));
  });

  it('schedule sync | list | pause | resume | trigger: output and the schedules as the server describes them', async () => {
    const sync = await cli('schedule', 'sync');
    expect(sync.code).toBe(0);
    expect(sync.stdout).toContain(`created  ${scheduleIdOf('cli')}`);
    expect(sync.stdout).toContain(`created  ${healthScheduleIdOf('cli')}`);

    const list = await cli('schedule', 'list');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^${scheduleIdOf('cli')}\tactive\tnext: \\d{4}-`, 'm'));

    const pause = await cli('schedule', 'pause', 'cli', '--reason', 'maintenance window');
    expect(pause).toMatchObject({ code: 0, stdout: `paused ${scheduleIdOf('cli')}: maintenance window\n` });
    const paused = await worker.client.schedule.getHandle(scheduleIdOf('cli')).describe();
    expect(paused.state).toMatchObject({ paused: true, note: 'maintenance window' });
    expect((await cli('schedule', 'list')).stdout).toMatch(new RegExp(`^${scheduleIdOf('cli')}\tPAUSED \\(maintenance window\\)`, 'm'));

    const resume = await cli('schedule', 'resume', 'cli');
    expect(resume).toMatchObject({ code: 0, stdout: `resumed ${scheduleIdOf('cli')}\n` });
    expect((await worker.client.schedule.getHandle(scheduleIdOf('cli')).describe()).state.paused).toBe(false);

    const before = (await backups()).length;
    const trigger = await cli('schedule', 'trigger', 'cli');
    expect(trigger).toMatchObject({ code: 0, stdout: `triggered ${scheduleIdOf('cli')}\n` });
    // The schedule's backup really ran: a new backup in the bucket, started by the schedule.
    await until('the triggered backup', async () => ((await backups()).length > before ? true : undefined));
    const d = await worker.client.schedule.getHandle(scheduleIdOf('cli')).describe();
    expect(d.info.recentActions.length).toBeGreaterThanOrEqual(1);

    const unknown = await cli('schedule', 'pause', 'nope', '--reason', 'x');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown cluster "nope"/);
  });

  it('backup now --wait | list | show: a backup taken, listed and shown; a failing one exits 1 naming the cause', async () => {
    const now = await cli('backup', 'now', 'cli', '--wait', '--reason', 'cli test');
    expect(now.stderr).toBe('');
    expect(now.code).toBe(0);
    expect(now.stdout).toMatch(/^started backup-cli-manual-/);
    const done = /backup of cli complete: revision (\d+), \d+ keys, .* \(zstd on the node, encrypted with key k1\)/.exec(now.stdout);
    expect(done).not.toBeNull();
    const newest = (await backups())[0].manifest;
    expect(newest.etcd.revision).toBe(done![1]);

    const list = await cli('backup', 'list', 'cli');
    expect(list.code).toBe(0);
    const rows = list.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^CREATED\s+REVISION\s+SIZE\s+ENCRYPTED\s+VERIFIED\s+DRILLED\s+KEY$/);
    expect(rows).toHaveLength(1 + (await backups()).length);
    expect(rows[1]).toMatch(new RegExp(`^${newest.created} +${newest.etcd.revision} .* k1 +yes +never +${newest.snapshot.key}$`));

    const show = await cli('backup', 'show', newest.snapshot.key);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ cluster: 'cli', etcd: { revision: newest.etcd.revision }, drill: 'never drilled' });
    const notOurs = await cli('backup', 'show', 'elsewhere/x.db');
    expect(notOurs.code).toBe(1);
    expect(notOurs.stderr).toMatch(/under no configured cluster's prefix/);

    const failed = await cli('backup', 'now', 'nobucket', '--wait');
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/^backup failed: cluster "nobucket", step plan: bucket .*no-such-bucket.* does not exist/);
  });

  it('check once backed up: healthy, no problems, exit 0; --json prints the report', async () => {
    const r = await cli('check', 'cli');
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toMatch(/^problems/m);
    expect(r.code).toBe(0);
    const newest = (await backups())[0].manifest;
    expect(r.stdout).toContain(`: ${newest.snapshot.key}`);
    const json = await cli('check', 'cli', '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ cluster: 'cli', problems: [], newestBackup: { key: newest.snapshot.key } });
  });

  it('status: every cluster on one screen (newest backup, drill, health from the last check); a bucket it cannot read is a problem, exit 1', async () => {
    const newest = (await backups())[0].manifest;
    const json = await cli('status', '--json');
    expect(json.code).toBe(1);
    const status = JSON.parse(json.stdout) as FleetStatus;
    expect(status.temporalProblem).toBeUndefined();
    expect(status.clusters.map((c) => c.cluster)).toEqual(['cli', 'nobucket']);
    expect(status.clusters[0]).toMatchObject({
      backup: { key: newest.snapshot.key, created: newest.created },
      health: { outcome: 'healthy', workflowId: expect.stringMatching(/^health-cli-/) },
      problems: [],
    });
    // Its bucket does not exist; its scheduled health check (when the schedule test ran first) says so too.
    expect(status.clusters[1].problems).toContainEqual(
      expect.stringMatching(/^bucket .*no-such-bucket.*: The specified bucket does not exist$/),
    );
    expect(status.clusters[1].problems.filter((p) => !/^(bucket |health: unhealthy \(health-nobucket)/.test(p))).toEqual([]);
    const text = await cli('status');
    expect(text.stdout).toMatch(/^CLUSTER +NEWEST BACKUP +LAST DRILL PASSED +CONTINUOUS \(NEWEST SEGMENT\) +HEALTH +RECOVERY$/m);
    expect(text.stdout).toMatch(/^cli +\d+ (s|min) old +never +- +healthy \d+ (s|min) ago +-$/m);
    expect(text.stdout).toMatch(/^ {2}nobucket: bucket .*no-such-bucket.*: The specified bucket does not exist$/m);
  });

  it('restore --dry-run prints the plan and changes nothing, --timeline draws its steps; recovery status shows it', async () => {
    const before = await nodeFingerprint(cluster.controlPlane);
    const timeline = join(await mkdtemp(join(tmpdir(), 'lifeboat-timeline-')), 'recovery.svg');
    const r = await cli('restore', 'cli', '--dry-run', '--timeline', timeline);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^recovery recover-cli \(run /);
    expect(r.stdout).toMatch(/recovery of cli: planned/);
    expect(r.stdout).toMatch(/plan:\n +1\. /);
    expect(r.stdout).toContain(`timeline: ${timeline}`);
    const svg = await readFile(timeline, 'utf8');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain('Recovery of cli: planned');
    expect(svg).toMatch(/<rect [^>]*><title>plan: done, \d+\.\d s \(backup [^<]*<\/title>/); // the plan step's bar, from its times
    // The timeline is drawn from the result: without waiting for it there is none, said before anything starts.
    const noWait = await cli('restore', 'cli', '--no-wait', '--timeline', timeline);
    expect(noWait.code).toBe(1);
    expect(noWait.stderr).toMatch(/--timeline: the timeline is drawn from the run's result; drop --no-wait/);
    expect(await nodeFingerprint(cluster.controlPlane)).toBe(before);
    const status = await cli('recovery', 'status', 'cli');
    expect(status).toMatchObject({ code: 0 });
    expect(status.stdout).toMatch(/^recover-cli: planned/);
    // A name no other test file uses: the dev server is shared by the whole run.
    const none = await cli('recovery', 'status', 'never-recovered');
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no recovery of cluster "never-recovered" has run/);
  });

  it('recovery status and approve of a recovery that ended where no worker answers: how it ended, from the server', async () => {
    // A run on a task queue no worker polls, ended: a query cannot be answered, describe can.
    const handle = await worker.client.workflow.start(recoverCluster, {
      taskQueue: `no-worker-${Date.now()}`,
      workflowId: 'recover-gone',
      args: [{ cluster: 'gone' }],
    });
    await handle.terminate('ended by the test');
    const status = await cli('recovery', 'status', 'gone');
    expect(status).toMatchObject({ code: 0, stderr: '' });
    expect(status.stdout).toMatch(/^recover-gone: terminated at \d{4}-\d\d-\d\dT[\d:.]+Z \(run [0-9a-f-]+\)$/m);
    const approve = await cli('recovery', 'approve', 'gone', '--by', 'oncall');
    expect(approve.code).toBe(1);
    expect(approve.stderr).toMatch(/the last recovery of cluster "gone" has ended \(terminated at .*\); nothing to approve/);
  });

  it('recovery reject: the run ends rejected and the node is unchanged; approve/reject with nothing waiting is refused', async () => {
    const before = await nodeFingerprint(cluster.controlPlane);
    const start = await cli('restore', 'cli', '--no-wait', '--reason', 'cli test');
    expect(start.code).toBe(0);
    await until('awaiting approval', async () => ((await recoveryState()) === 'awaiting-approval' ? true : undefined));
    const status = await cli('recovery', 'status', 'cli');
    expect(status.stdout).toMatch(/^recover-cli: awaiting-approval/);
    const reject = await cli('recovery', 'reject', 'cli', '--by', 'oncall', '--reason', 'false alarm');
    expect(reject).toMatchObject({ code: 0, stdout: 'rejected recovery of cli\n' });
    const result = (await worker.client.workflow.getHandle('recover-cli').result()) as RecoverClusterResult;
    expect(result.outcome).toBe('rejected');
    expect(result.approval).toMatchObject({ by: 'oncall', decision: 'rejected', reason: 'false alarm' });
    expect(await nodeFingerprint(cluster.controlPlane)).toBe(before);
    expect((await worker.client.schedule.getHandle(scheduleIdOf('cli')).describe()).state.paused).toBe(false);

    const late = await cli('recovery', 'approve', 'cli', '--by', 'oncall');
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/the recovery of cluster "cli" is not waiting for approval \(it is rejected\)/);
    const never = await cli('recovery', 'approve', 'never-recovered', '--by', 'oncall');
    expect(never.code).toBe(1);
    expect(never.stderr).toMatch(/no recovery of cluster "never-recovered" has run/);
  });

  it('recovery approve: the waiting recovery runs to completion and restores the backup', async () => {
    await api.create('/api/v1/namespaces/default/configmaps', configMap('after-backups'));
    expect(await names()).toContain('after-backups');
    const start = await cli('restore', 'cli', '--no-wait');
    expect(start.code).toBe(0);
    await until('awaiting approval', async () => ((await recoveryState()) === 'awaiting-approval' ? true : undefined));
    const approve = await cli('recovery', 'approve', 'cli', '--by', 'oncall', '--reason', 'confirmed');
    expect(approve).toMatchObject({ code: 0, stdout: 'approved recovery of cli\n' });
    const result = (await worker.client.workflow.getHandle('recover-cli').result()) as RecoverClusterResult;
    expect(result.outcome).toBe('restored');
    expect(result.approval).toMatchObject({ by: 'oncall', decision: 'approved' });
    expect(await names()).not.toContain('after-backups');
    const status = await cli('recovery', 'status', 'cli');
    expect(status.stdout).toMatch(/^recover-cli: succeeded/);
  });
});
