import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readManifest } from '../../src/backup/catalog';
import { signManifest } from '../../src/backup/manifest-auth';
import { clusterSchema, type ClusterConfig } from '../../src/config/schema';
import { parseConfig } from '../../src/config/load';
import { waitFor } from '../../src/devserver/processes';
import { KubeClient } from '../../src/kube/client';
import { credentialsFromKubeconfig } from '../../src/kube/kubeconfig';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import type { SandboxNode } from '../../sandbox/node';
import { minioClient, minioStorage } from '../support/bed';
import { drill, seedObjects, drillReportOf } from '../support/drills';
import { keyFile, runBackup } from '../support/backups';
import { failureOf } from '../support/failures';
import { nodeFingerprint } from '../support/recovery';
import { startTestWorker, type RunningWorker } from '../support/worker';
import { workerProcess } from '../support/worker-process';
import { resultExplained } from '../support/kill';
import type { BackupClusterResult } from '../../workflows/backup-cluster';
import { drillRestore } from '../../workflows';

const BUCKET = 'drillnode';
/** On the drill node only (its own /var/lib): the worker has neither. */
const SCRATCH = '/var/lib/lifeboat/drills';
const TOOLS = '/var/lib/drill-tools';

/** Processes (all share the host's pid namespace with the sandbox nodes) whose command line names a drill run dir of this cluster. */
async function drillProcesses(): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ');
    if (cmd.includes(`${SCRATCH}/dn-`)) found.push(`${pid}: ${cmd.slice(0, 120)}`);
  }
  return found;
}

/** True when the process runs in the node's network namespace (its throwaway servers run on the drill node). */
async function inNetnsOf(node: SandboxNode, pid: string): Promise<boolean> {
  const theirs = await readlink(`/proc/${pid}/ns/net`);
  return (await node.exec(['readlink', '/proc/self/ns/net'])).trim() === theirs;
}

describe('restore drills on a drill node over SSH (etcd 3.6 + kube-apiserver 1.34 there)', () => {
  let cluster: SandboxCluster;
  let drillNode: SandboxNode;
  let clusterConfig: ClusterConfig;
  let worker: RunningWorker;
  let good: BackupClusterResult;
  let key: { path: string; key: Buffer };
  let drillConfig: Record<string, unknown>;
  const s3 = minioClient();

  beforeAll(async () => {
    key = await keyFile();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    cluster = await createSandboxCluster({
      name: 'dn',
      etcdLine: '3.6',
      withApiserver: true,
      withSchedulerAndControllerManager: false,
      storage: minioStorage(BUCKET),
      spareNodes: ['drill1'],
    });
    drillNode = cluster.nodes.get('drill1')!;
    // The drill node's tools, where only it sees them (its private /var/lib).
    const bins = cluster.binaries;
    await mkdir(drillNode.path(`${TOOLS}/etcd-3.6`), { recursive: true });
    for (const b of ['etcd', 'etcdctl', 'etcdutl']) await symlink(join(bins.etcd['3.6'], b), drillNode.path(`${TOOLS}/etcd-3.6/${b}`));
    await symlink(bins.kubeApiserver, drillNode.path(`${TOOLS}/kube-apiserver`));
    const spare = cluster.config.nodes.find((n) => n.name === 'drill1')!;
    // The cluster is its control-plane node alone; the spare is the drill node.
    clusterConfig = clusterSchema.parse({
      ...cluster.config,
      nodes: cluster.config.nodes.filter((n) => n.name !== 'drill1'),
      backup: { ...cluster.config.backup, encryptionKey: 'k1' },
    });
    drillConfig = {
      scratchDir: SCRATCH,
      startTimeout: '60s',
      node: { ...spare, etcd: { '3.6': `${TOOLS}/etcd-3.6` }, kubeApiserver: { '1.34': `${TOOLS}/kube-apiserver` } },
    };
    worker = await startTestWorker([clusterConfig], { encryptionKeys: { k1: { file: key.path } }, drill: drillConfig });
    const api = new KubeClient(
      credentialsFromKubeconfig(await readFile(cluster.controlPlane.path('/etc/kubernetes/admin.conf'), 'utf8'), cluster.apiServer),
    );
    await seedObjects(api, 4);
    good = await runBackup(worker.client, worker.taskQueue, 'dn');
  });
  afterAll(async () => {
    await worker?.stop();
    await cluster?.destroy();
    s3.destroy();
  });

  /** Nothing of a drill on the drill node (processes, scratch) nor on the worker (its copy of the archive). */
  const nothingLeft = async () => {
    expect(await readdir(drillNode.path(SCRATCH))).toEqual([]);
    expect(await drillProcesses()).toEqual([]);
    expect((await readdir(tmpdir())).filter((d) => d.startsWith('lifeboat-drill-dn-'))).toEqual([]);
  };

  it('a good backup drills green on the drill node, counted through its API; the control-plane node is untouched; nothing is left', async () => {
    // The tools exist only on the drill node: a drill that ran them on the worker could not have started.
    expect(existsSync(TOOLS)).toBe(false);
    const before = await nodeFingerprint(cluster.controlPlane);
    const run = drill(worker.client, worker.taskQueue, { cluster: 'dn' });
    // While it runs, its throwaway servers live in the drill node's network namespace.
    await waitFor(
      'the throwaway kube-apiserver on the drill node',
      async () => (await drillProcesses()).some((p) => p.includes('kube-apiserver')),
      120_000,
      100,
    );
    // The throwaway servers, not the short-lived etcdctl probes beside them (one can exit before its namespace is read).
    const servers = (await drillProcesses()).filter((p) => /^\d+: (\S*\/)?(etcd|kube-apiserver) /.test(p));
    expect(servers.some((p) => p.includes('kube-apiserver'))).toBe(true);
    for (const p of servers) expect(await inNetnsOf(drillNode, p.split(':')[0])).toBe(true);
    const result = await run;
    expect(result.manifestKey).toBe(good.manifestKey);
    expect(result.checks).toContain('drill host: drill1 (ssh)');
    expect(result.countedThrough).toBe('api');
    const matched = Object.fromEntries(result.counts.matched.map((c) => [c.resource, c.actual]));
    expect(matched.configmaps).toBe(good.resourceCounts.configmaps);
    expect(matched.secrets).toBe(good.resourceCounts.secrets);
    expect(result.counts.differed).toEqual([]);
    const report = await drillReportOf(s3, worker, good.manifestKey);
    expect(report).toMatchObject({ result: 'passed', problems: [], countedThrough: 'api', drillHost: 'drill1 (ssh)' });
    expect(report!.sampled.secrets).toBeGreaterThan(0);
    expect(report!.checks.join('\n')).toMatch(/ca\.crt signs pki\/apiserver\.crt/);
    expect(report!.checks.join('\n')).toMatch(/throwaway kube-apiserver \(\/var\/lib\/drill-tools\/kube-apiserver\) ready/);
    await nothingLeft();
    expect(await nodeFingerprint(cluster.controlPlane)).toBe(before);
  });

  it('a backup rewritten in the bucket is refused by the plan, naming the checksum: nothing reaches the drill node', async () => {
    const victim = await runBackup(worker.client, worker.taskQueue, 'dn');
    const body = Buffer.from(
      await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: victim.snapshotKey }))).Body!.transformToByteArray(),
    );
    body[Math.floor(body.length / 2)] ^= 0xff;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: victim.snapshotKey, Body: body }));
    const f = await failureOf(drill(worker.client, worker.taskQueue, { cluster: 'dn', snapshot: victim.snapshotKey }));
    expect(f.type).toBe('DrillFailed');
    expect(f.message).toContain(victim.manifestKey);
    expect(f.message).toMatch(/checksum/);
    const report = await drillReportOf(s3, worker, victim.manifestKey);
    // The plan saw it in the bucket: nothing was fetched to, or run on, the drill node.
    expect(report).toMatchObject({ result: 'failed', countedThrough: 'none' });
    expect(report!.drillHost).toBeUndefined();
    expect(report!.problems.join('\n')).toMatch(/checksum/);
    await nothingLeft();
  });

  it('a backup rewritten past the bucket checksum (manifest re-signed) fails on the drill node, mid-fetch, naming it; nothing is left', async () => {
    const victim = await runBackup(worker.client, worker.taskQueue, 'dn');
    const get = async (k: string) =>
      Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: k }))).Body!.transformToByteArray());
    const [original, originalManifest] = [await get(victim.snapshotKey), await get(victim.manifestKey)];
    // An insider with the key: one byte flipped, the bucket's checksum and the manifest's tag made to match again, so
    // the plan's checks pass and only the fetch on the drill node (chunk authentication, sha256) can tell.
    const body = Buffer.from(original);
    body[Math.floor(body.length / 2)] ^= 0xff;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: victim.snapshotKey, Body: body, ChecksumAlgorithm: 'SHA256' }));
    const m = await readManifest(s3, BUCKET, victim.manifestKey);
    const forged = { ...m, snapshot: { ...m.snapshot, s3Checksum: createHash('sha256').update(body).digest('base64') } };
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: victim.manifestKey, Body: JSON.stringify(signManifest(forged, key.key, 'k1')) }),
    );
    try {
      const f = await failureOf(drill(worker.client, worker.taskQueue, { cluster: 'dn', snapshot: victim.snapshotKey }));
      expect(f.type).toBe('DrillFailed');
      expect(f.message).toContain(victim.manifestKey);
      expect(f.message).toContain(victim.snapshotKey);
      const report = await drillReportOf(s3, worker, victim.manifestKey);
      expect(report).toMatchObject({ result: 'failed', drillHost: 'drill1 (ssh)' });
      expect(report!.checks).toContain('drill host: drill1 (ssh)');
      expect(report!.checks.join('\n')).toMatch(/manifest signed with key k1: its tag matches/);
      expect(report!.problems.join('\n')).toContain(victim.snapshotKey);
    } finally {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: victim.snapshotKey, Body: original, ChecksumAlgorithm: 'CRC32' }));
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: victim.manifestKey, Body: originalManifest }));
    }
    await nothingLeft();
  });

  it("refuses at once when the drill node's scratch dir has too little room (df there), naming the node, the folder and the sizes", async () => {
    // A 2 MiB tmpfs in the drill node's own mount namespace (the worker's disk is not the one that counts).
    const tiny = '/var/lib/lifeboat/tiny';
    await drillNode.exec(['mkdir', '-p', tiny]);
    await drillNode.exec(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', tiny]);
    const small = await startTestWorker([clusterConfig], {
      encryptionKeys: { k1: { file: key.path } },
      drill: { ...drillConfig, scratchDir: tiny },
    });
    try {
      const f = await failureOf(drill(small.client, small.taskQueue, { cluster: 'dn', snapshot: good.snapshotKey }));
      expect(f.type).toBe('NoSpace');
      expect(f.message).toMatch(
        new RegExp(
          `step restore: the drill's scratch dir ${tiny} on drill node "drill1" has [\\d.]+ MiB free; this backup needs about [\\d.]+ MiB`,
        ),
      );
      expect(await drillNode.exec(['ls', '-A', tiny])).toBe('');
    } finally {
      await small.stop();
      await drillNode.exec(['umount', tiny]);
    }
  });

  it('a worker killed (SIGKILL) mid-drill: the retry stops the orphans on the drill node, passes, and leaves nothing', async () => {
    const proc = await workerProcess('drillnodekill', clusterConfig, key.path, { drill: drillConfig });
    let w = proc.launch();
    try {
      const handle = await worker.client.workflow.start(drillRestore, {
        taskQueue: proc.taskQueue,
        workflowId: `drill-dn-kill-${Date.now()}`,
        args: [{ cluster: 'dn', snapshot: good.snapshotKey }],
      });
      await waitFor(
        'the throwaway kube-apiserver on the drill node',
        async () => (await drillProcesses()).some((p) => p.includes('kube-apiserver')),
        120_000,
        100,
      );
      w.child.kill('SIGKILL');
      await w.exited;
      // Orphans on the drill node now (they run detached there, not as the worker's children).
      expect((await drillProcesses()).length).toBeGreaterThan(0);
      w = proc.launch();
      const result = await resultExplained(handle, [w.logFile]);
      expect(result.manifestKey).toBe(good.manifestKey);
      const history = await handle.fetchHistory();
      expect((history.events ?? []).some((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1)).toBe(true);
      await nothingLeft();
    } finally {
      await w.stop();
    }
  });

  it("refuses a config whose drill node is the cluster's control-plane node, naming the field", () => {
    const cp = clusterConfig.nodes[0];
    expect(() =>
      parseConfig({ clusters: [clusterConfig], drill: { ...drillConfig, node: { ...cp, name: 'drill1' } } }, 'test config'),
    ).toThrow(
      new RegExp(
        `drill\\.node\\.host: ${cp.host.replace(/\./g, '\\.')}:22 is node "cp1" of cluster "dn": a drill never runs on a cluster's node`,
      ),
    );
  });
});
