import { parse } from 'yaml';

/** What a restore needs from etcd's static-pod manifest: the member's identity and where its data lives on the host. */
export interface EtcdMember {
  name: string;
  initialCluster: string;
  initialAdvertisePeerUrls: string;
  initialClusterToken: string;
  /** --data-dir as the container sees it. */
  dataDir: string;
  /** The same folder on the node (the hostPath volume mounted at --data-dir). */
  hostDataDir: string;
  /** Image tag (kubeadm: registry.k8s.io/etcd:3.6.4-0). */
  imageTag?: string;
}

interface PodSpec {
  spec?: {
    containers?: { command?: string[]; args?: string[]; image?: string; volumeMounts?: { name: string; mountPath: string }[] }[];
    volumes?: { name: string; hostPath?: { path: string } }[];
  };
}

/**
 * Every flag of a command line, in order, each occurrence kept: a flag given twice names two values (two files to
 * archive and check), and a component reads all of a repeatable flag (kube-apiserver's --service-account-key-file).
 */
export function flagListOf(argv: readonly string[]): [string, string][] {
  const flags: [string, string][] = [];
  for (let i = 0; i < argv.length; i++) {
    const m = /^--?([^=]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) continue;
    if (m[2] !== undefined) flags.push([m[1], m[2]]);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('-')) flags.push([m[1], argv[++i]]);
    else flags.push([m[1], 'true']);
  }
  return flags;
}

/** The value each flag takes: the last of a flag given twice wins, as Go's flag and pflag parsers set it. */
export function flagsOf(argv: readonly string[]): Map<string, string> {
  return new Map(flagListOf(argv));
}

export function parseEtcdManifest(text: string, source: string): EtcdMember {
  const pod = parse(text) as PodSpec;
  const container = pod?.spec?.containers?.[0];
  if (!container) throw new Error(`${source}: not a static-pod manifest with a container`);
  const flags = flagsOf([...(container.command ?? []), ...(container.args ?? [])]);
  const need = (flag: string) => {
    const v = flags.get(flag);
    if (!v) throw new Error(`${source}: etcd has no --${flag} flag; cannot restore without it`);
    return v;
  };
  const dataDir = flags.get('data-dir') ?? '/var/lib/etcd';
  const mount = container.volumeMounts?.find((m) => m.mountPath === dataDir || dataDir.startsWith(`${m.mountPath}/`));
  const hostPath = mount ? pod.spec?.volumes?.find((v) => v.name === mount.name)?.hostPath?.path : undefined;
  const hostDataDir = hostPath && mount ? hostPath + dataDir.slice(mount.mountPath.length) : dataDir;
  return {
    name: need('name'),
    initialCluster: need('initial-cluster'),
    initialAdvertisePeerUrls: need('initial-advertise-peer-urls'),
    // kubeadm does not set a token; etcd's default is "etcd-cluster".
    initialClusterToken: flags.get('initial-cluster-token') ?? 'etcd-cluster',
    dataDir,
    hostDataDir,
    imageTag: container.image?.includes(':') ? container.image.split(':').pop() : undefined,
  };
}

/** "3.6.16" / "v3.5.9" / "3.6.4-0" -> "3.6" */
export function minorOf(version: string | undefined): string | undefined {
  const m = /^v?(\d+)\.(\d+)/.exec(version ?? '');
  return m ? `${m[1]}.${m[2]}` : undefined;
}
