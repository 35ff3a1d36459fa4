import type { ApplicationFailure } from '@temporalio/common';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandboxCluster, type SandboxCluster } from '../../sandbox/cluster';
import { etcdctlArgs } from '../../sandbox/control-plane';
import { withSession } from '../../src/ssh/session';
import { checkSnapshotFile } from '../../activities/backup/inspect-snapshot';
import { takeSnapshot } from '../../activities/backup/take-snapshot';
import pino from 'pino';
import { withSnapshotHost } from '../../src/backup/snapshot-host';
import { parseConfig } from '../../src/config/load';
import { minioStorage } from '../support/bed';

describe('sandbox control-plane node (etcd 3.6, over SSH)', () => {
  let cluster: SandboxCluster;

  beforeAll(async () => {
    cluster = await createSandboxCluster({
      name: 'smoke-etcd',
      etcdLine: '3.6',
      withApiserver: false,
      storage: minioStorage('smoke-etcd'),
    });
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  it("runs etcd as a static pod of a real kubelet, in the node's own containerd and cgroup root", async () => {
    const node = cluster.controlPlane;
    expect(await node.crictl(['version'])).toMatch(/RuntimeName:\s+containerd/);
    const pods = await node.pods();
    expect(pods.map((p) => `${p.namespace}/${p.name}`)).toEqual(['kube-system/etcd-cp1']);
    const etcd = pods[0].containers.find((c) => c.name === 'etcd');
    expect(etcd).toMatchObject({ running: true, pid: expect.any(Number) });
    const cgroups = await readFile(`/proc/${etcd!.pid}/cgroup`, 'utf8');
    expect(cgroups).toMatch(new RegExp(`:memory:/lifeboat/${node.netns}/kubepods/`));
  });

  it("starts its containerd from the machine's imported root: the images linked, the databases its own", async () => {
    const node = cluster.controlPlane;
    const images = await node.crictl(['images', '-o', 'json']);
    const tags = (JSON.parse(images) as { images: { repoTags: string[] }[] }).images.flatMap((i) => i.repoTags);
    expect(tags).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^registry\.k8s\.io\/etcd:3\.6\./),
        expect.stringMatching(/^registry\.k8s\.io\/pause:/),
      ]),
    );
    // containerd writes its bolt databases in place: a shared inode would let one node's writes reach every other.
    for (const db of ['io.containerd.metadata.v1.bolt/meta.db', 'io.containerd.snapshotter.v1.overlayfs/metadata.db']) {
      expect((await stat(node.path(`/var/lib/containerd/${db}`))).nlink).toBe(1);
    }
    const blobs = node.path('/var/lib/containerd/io.containerd.content.v1.content/blobs/sha256');
    const links = await Promise.all((await readdir(blobs)).map(async (b) => (await stat(join(blobs, b))).nlink));
    expect(Math.min(...links)).toBeGreaterThanOrEqual(2);
  });

  it("refuses an empty snapshot (a fresh etcd) and an unreadable one at backup time, with etcd's own reader", async () => {
    // Runs before anything is written: this etcd has no keys yet, as a wiped or brand-new one has.
    const config = parseConfig({ clusters: [cluster.config] }, 'test');
    await withSnapshotHost(config, 'smoke-etcd', undefined, 'node', async (host) => {
      await host.run(['mkdir', '-p', '/var/lib/lifeboat/work']);
      await host.run(host.etcdctl('snapshot', 'save', '/var/lib/lifeboat/work/empty.db'));
      const refusal = (path: string) =>
        checkSnapshotFile(host, path).then(
          () => {
            throw new Error(`${path} was accepted`);
          },
          (err: ApplicationFailure) => `${err.type}: ${err.message}`,
        );
      expect(await refusal('/var/lib/lifeboat/work/empty.db')).toMatch(
        /^EmptySnapshot: the snapshot on node "cp1" is empty \(0 keys, revision [01]\); refusing to store it as a backup/,
      );
      await host.run(['sh', '-c', 'head -c 1048576 /dev/urandom > /var/lib/lifeboat/work/garbage.db']);
      expect(await refusal('/var/lib/lifeboat/work/garbage.db')).toMatch(
        /^UnreadableSnapshot: the snapshot \/var\/lib\/lifeboat\/work\/garbage\.db on node "cp1" is unreadable/,
      );
      await host.run(['rm', '-f', '/var/lib/lifeboat/work/empty.db', '/var/lib/lifeboat/work/garbage.db']);
    });
    // The backup step itself: refused for good, it leaves no copy of the database on the node (a later step would not).
    const refused = await takeSnapshot({ config, logger: pino({ level: 'silent' }) })({
      cluster: 'smoke-etcd',
      runKey: 'empty-1',
    }).then(
      () => undefined,
      (err: ApplicationFailure) => err.type,
    );
    expect(refused).toBe('EmptySnapshot');
    expect(await cluster.controlPlane.exec(['bash', '-c', 'ls -A /var/lib/lifeboat/backups 2>/dev/null || true'])).not.toContain('empty-1');
  });

  it('etcdctl snapshot save over SSH writes a snapshot that etcdutl snapshot status accepts', async () => {
    const node = cluster.config.nodes[0];
    await withSession(node, async (s) => {
      const put = await s.run(['etcdctl', ...etcdctlArgs(), 'put', '/smoke/key', 'value-1']);
      expect(put.stdout.trim()).toBe('OK');
      await s.run(['mkdir', '-p', '/var/lib/lifeboat/work']);
      await s.run(['etcdctl', ...etcdctlArgs(), 'snapshot', 'save', '/var/lib/lifeboat/work/smoke.db']);
      const status = await s.run(['etcdutl', 'snapshot', 'status', '-w', 'json', '/var/lib/lifeboat/work/smoke.db']);
      const parsed = JSON.parse(status.stdout) as { hash: number; revision: number; totalKey: number; totalSize: number };
      expect(parsed.revision).toBeGreaterThan(1);
      expect(parsed.totalKey).toBeGreaterThan(0);
      expect(parsed.totalSize).toBeGreaterThan(0);
    });
    // The file is the node's own: it sits in the node's private /var/lib, not the host's.
    const onHost = await readFile(cluster.controlPlane.path('/var/lib/lifeboat/work/smoke.db'));
    expect(onHost.length).toBeGreaterThan(0);
  });
});
