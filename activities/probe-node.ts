import { findCluster, findNode } from '../src/config/load';
import { withSession } from '../src/ssh/session';
import { command } from '../src/ssh/quote';
import type { ActivityDeps } from './deps';
import { cancellationSignal } from './heartbeat';

export interface ProbeNodeInput {
  cluster: string;
  node: string;
}

export interface NodeProbe {
  node: string;
  host: string;
  etcdctlVersion?: string;
  etcdutlVersion?: string;
  /** Static-pod manifest files present in the manifests folder. */
  manifests: string[];
  etcdDataDirExists: boolean;
}

const versionOf = (out: string) => /(?:etcdctl|etcdutl) version:\s*(\S+)/i.exec(out)?.[1];

/** Reads what the engine needs to know about a node over SSH (host key pinned); changes nothing there. */
export function probeNode(deps: ActivityDeps) {
  return async (input: ProbeNodeInput): Promise<NodeProbe> => {
    const cluster = findCluster(deps.config, input.cluster);
    const node = findNode(cluster, input.node);
    return withSession(
      node,
      async (s) => {
        const run = (argv: string[]) => s.run(argv, { allowFailure: true });
        const etcdctl = await run([cluster.etcd.etcdctl, 'version']);
        const etcdutl = await run([
          'sh',
          '-c',
          `command -v ${command([cluster.etcd.etcdutl])} >/dev/null && ${command([cluster.etcd.etcdutl, 'version'])}`,
        ]);
        const manifests = await run(['ls', '-1', cluster.paths.manifestsDir]);
        const dataDir = await run(['test', '-d', cluster.paths.etcdDataDir]);
        return {
          node: node.name,
          host: node.host,
          etcdctlVersion: versionOf(etcdctl.stdout),
          etcdutlVersion: etcdutl.code === 0 ? versionOf(etcdutl.stdout) : undefined,
          manifests: manifests.code === 0 ? manifests.stdout.split('\n').filter(Boolean) : [],
          etcdDataDirExists: dataDir.code === 0,
        };
      },
      { signal: cancellationSignal() },
    );
  };
}
