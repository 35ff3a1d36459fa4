import { findCluster } from '../../src/config/load';
import type { ClusterConfig } from '../../src/config/schema';
import { withSession } from '../../src/ssh/session';
import type { HealthReport } from '../health/check-health';
import { etcdDataLost } from '../../src/health/troubles';
import type { ActivityDeps } from '../deps';
import { cancellationSignal } from '../heartbeat';

export type DiagnosisCause =
  | 'healthy'
  | 'node-unreachable'
  | 'certificates-expired'
  | 'disk-full'
  | 'etcd-data-missing'
  | 'etcd-data-lost'
  | 'etcd-data-corrupt'
  | 'etcd-manifest-missing'
  | 'etcd-not-running'
  | 'apiserver-down'
  | 'components-down';

export interface Diagnosis {
  cluster: string;
  node: string;
  cause: DiagnosisCause;
  /** What a recovery would do about it: only lost or corrupt etcd data, or a lost node with a standby, is a restore case. */
  verdict: 'restore-in-place' | 'restore-new-node' | 'no-restore';
  /** The standby node a new-node recovery would use. */
  target?: string;
  summary: string;
  advice: string;
  findings: { check: string; ok: boolean; detail: string }[];
}

export interface DiagnoseInput {
  cluster: string;
  /** The last probe of the confirm phase. */
  health: HealthReport;
  /** When the node was first seen unreachable during this response. */
  unreachableSince?: string;
}

/** bbolt's meta page magic (0xED0CDAED) as `od -tx4` prints it on a little-endian node: every etcd db starts with it. */
const BOLT_MAGIC = 'ed0cdaed';
/** Below this much free space under the data dir, etcd cannot start or compact: a disk problem, not a data problem. */
const DISK_FULL_BYTES = 64 * 1024 * 1024;

/**
 * The facts about etcd's data on the node, read in one round trip. The script is fixed text; the paths travel as
 * positional parameters, quoted by the session, so nothing from the config is pasted into shell code.
 */
const DATA_PROBE = [
  'd="$1"; m="$2"',
  'if [ -d "$d" ]; then echo datadir=yes; else echo datadir=no; fi',
  'if [ -d "$d/member" ]; then echo member=yes; else echo member=no; fi',
  'db="$d/member/snap/db"',
  'if [ -f "$db" ]; then echo db=yes; echo "dbsize=$(stat -c %s "$db")"; echo "dbmagic=$(od -An -tx4 -j16 -N4 "$db" 2>/dev/null | tr -d " \\n")"; else echo db=no; fi',
  'echo "wal=$(ls "$d/member/wal" 2>/dev/null | grep -c "\\.wal$")"',
  'if [ -f "$m/etcd.yaml" ]; then echo manifest=yes; else echo manifest=no; fi',
].join('\n');

function parseFacts(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]),
  );
}

/**
 * Decides what kind of failure a confirmed alert is, from the last probe and a look at etcd's data on the node.
 * Changes nothing. Only missing or corrupt etcd data (or a node that is gone, with a standby configured) is a case for
 * a restore: a restore throws away every write since the backup, so intact data is never restored over.
 */
export function diagnoseCluster(deps: ActivityDeps) {
  return async (input: DiagnoseInput): Promise<Diagnosis> => {
    const cluster = findCluster(deps.config, input.cluster);
    const node = cluster.nodes.find((n) => n.name === input.health.node) ?? cluster.nodes[0];
    const up = (c: string) => input.health.components.find((x) => x.component === c)?.up === true;
    const down = input.health.components.filter((c) => !c.up).map((c) => c.component);
    const findings: Diagnosis['findings'] = input.health.components.map((c) => ({ check: c.component, ok: c.up, detail: c.detail }));
    const base = { cluster: cluster.name, node: node.name, findings };

    if (!up('node')) {
      const since = input.unreachableSince ? ` since ${input.unreachableSince}` : '';
      const standby = standbyFor(cluster, node.name);
      if (standby) {
        return {
          ...base,
          cause: 'node-unreachable',
          verdict: 'restore-new-node',
          target: standby,
          summary: `node ${node.name} is unreachable over SSH${since}`,
          advice: `a new-node recovery onto the standby node ${standby} (recovery.standbyNode), which takes over ${node.host}`,
        };
      }
      return {
        ...base,
        cause: 'node-unreachable',
        verdict: 'no-restore',
        summary: `node ${node.name} is unreachable over SSH${since}`,
        advice: 'bring the node back (its etcd data is probably intact), or set recovery.standbyNode to let a new node take over',
      };
    }

    const now = Date.now();
    const expired = input.health.certificates.filter((c) => Date.parse(c.notAfter) <= now);
    if (expired.length) {
      findings.push({ check: 'certificates', ok: false, detail: `expired: ${expired.map((c) => `${c.name} (${c.notAfter})`).join(', ')}` });
      return {
        ...base,
        cause: 'certificates-expired',
        verdict: 'no-restore',
        summary: `${expired.length} certificate(s) expired: ${expired.map((c) => c.name).join(', ')}`,
        advice:
          'renew them (`kubeadm certs renew all`) and restart the control-plane static pods; a restore would not help and would lose writes',
      };
    }

    const facts = await readDataFacts(cluster, node.name);
    const disk = input.health.disk;
    if (disk && disk.freeBytes < DISK_FULL_BYTES) {
      findings.push({ check: 'disk', ok: false, detail: `${disk.freeBytes} bytes free under ${disk.path}` });
      return {
        ...base,
        cause: 'disk-full',
        verdict: 'no-restore',
        summary: `the disk under ${disk.path} is full (${disk.freeBytes} bytes free)`,
        advice: `free space on node ${node.name} under ${disk.path}; etcd restarts by itself once it can write`,
      };
    }

    const dbDetail =
      facts.db === 'yes'
        ? `db ${facts.dbsize} bytes, magic ${facts.dbmagic || '(unreadable)'}, ${facts.wal} WAL file(s)`
        : 'no member/snap/db';
    findings.push({
      check: 'etcd data',
      ok: facts.db === 'yes' && facts.dbmagic === BOLT_MAGIC,
      detail: `${cluster.paths.etcdDataDir}: ${facts.datadir === 'yes' ? dbDetail : 'missing'}`,
    });
    findings.push({
      check: 'etcd manifest',
      ok: facts.manifest === 'yes',
      detail: `${cluster.paths.manifestsDir}/etcd.yaml ${facts.manifest === 'yes' ? 'present' : 'missing'}`,
    });

    if (up('etcd')) {
      const h = input.health;
      if (etcdDataLost(h)) {
        return {
          ...base,
          cause: 'etcd-data-lost',
          verdict: 'restore-in-place',
          summary: `etcd answers but has lost its data: revision ${h.etcd?.revision} is below the newest backup's ${h.newestBackup?.revision} (${h.newestBackup?.key})`,
          advice: 'restore the newest verified backup in place; the current data dir is kept aside',
        };
      }
      if (down.length === 0)
        return { ...base, cause: 'healthy', verdict: 'no-restore', summary: 'every component answers', advice: 'nothing to do' };
      if (!up('kube-apiserver')) {
        return {
          ...base,
          cause: 'apiserver-down',
          verdict: 'no-restore',
          summary: `etcd is healthy; down: ${down.join(', ')}`,
          advice:
            "etcd holds the cluster's data intact: look at kube-apiserver's static pod and logs on the node; a restore would lose every write since the backup",
        };
      }
      return {
        ...base,
        cause: 'components-down',
        verdict: 'no-restore',
        summary: `etcd and kube-apiserver are healthy; down: ${down.join(', ')}`,
        advice: `restart or repair ${down.join(' and ')} (static pods in ${cluster.paths.manifestsDir}); the cluster's data is intact`,
      };
    }

    if (facts.datadir !== 'yes' || facts.member !== 'yes' || facts.db !== 'yes' || facts.dbsize === '0') {
      return {
        ...base,
        cause: 'etcd-data-missing',
        verdict: 'restore-in-place',
        summary: `etcd is down and its data is gone (${cluster.paths.etcdDataDir}: ${facts.datadir !== 'yes' ? 'missing' : dbDetail})`,
        advice: 'restore the newest verified backup in place',
      };
    }
    if (facts.dbmagic !== BOLT_MAGIC) {
      return {
        ...base,
        cause: 'etcd-data-corrupt',
        verdict: 'restore-in-place',
        summary: `etcd is down and its database is corrupt (${dbDetail}; expected magic ${BOLT_MAGIC})`,
        advice: 'restore the newest verified backup in place; the corrupt data dir is kept aside',
      };
    }
    if (facts.manifest !== 'yes') {
      return {
        ...base,
        cause: 'etcd-manifest-missing',
        verdict: 'no-restore',
        summary: `etcd is down: its static-pod manifest ${cluster.paths.manifestsDir}/etcd.yaml is missing; its data looks intact (${dbDetail})`,
        advice:
          "put etcd.yaml back (a copy is in every backup's control-plane archive, and under the work dir's recoveries/*/manifests-before); a restore would lose writes",
      };
    }
    return {
      ...base,
      cause: 'etcd-not-running',
      verdict: 'no-restore',
      summary: `etcd is down but its data looks intact (${dbDetail})`,
      advice:
        "look at the kubelet and etcd's logs on the node (crictl ps -a; crictl logs); a restore would lose every write since the backup",
    };
  };
}

function standbyFor(cluster: ClusterConfig, deadNode: string): string | undefined {
  const s = cluster.recovery.standbyNode;
  return s && s !== deadNode ? s : undefined;
}

async function readDataFacts(cluster: ClusterConfig, nodeName: string): Promise<Record<string, string>> {
  const node = cluster.nodes.find((n) => n.name === nodeName)!;
  return withSession(
    node,
    async (s) =>
      parseFacts((await s.run(['sh', '-c', DATA_PROBE, 'diagnose', cluster.paths.etcdDataDir, cluster.paths.manifestsDir])).stdout),
    { readyTimeoutMs: 10_000, signal: cancellationSignal() },
  );
}
