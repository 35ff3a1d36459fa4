import type { Revision } from '../etcd/revision';
/** What a health check reports about one cluster's control plane (the checkHealth activity and `lifeboat health`). */
export type Component = 'kube-apiserver' | 'etcd' | 'kube-scheduler' | 'kube-controller-manager' | 'node';

export const COMPONENTS: readonly Component[] = ['kube-apiserver', 'etcd', 'kube-scheduler', 'kube-controller-manager', 'node'];

export interface ComponentHealth {
  component: Component;
  up: boolean;
  detail: string;
}

export interface CertificateExpiry {
  /** As `kubeadm certs check-expiration` names it: apiserver, etcd-server, admin.conf, ca, ... */
  name: string;
  /** The file on the node (the kubeconfig for certificates embedded in one). */
  path: string;
  /** ISO time. */
  notAfter: string;
}

export interface HealthReport {
  cluster: string;
  node: string;
  /** ISO time the check started. */
  checkedAt: string;
  /** All five components, always, in the order of COMPONENTS. */
  components: ComponentHealth[];
  etcd?: { hasLeader?: boolean; dbSizeBytes?: number; quotaBytes?: number; revision?: Revision };
  /** The filesystem of paths.etcdDataDir (measured at its nearest existing parent when it does not exist). */
  disk?: { path: string; freeBytes: number; totalBytes: number };
  certificates: CertificateExpiry[];
  newestBackup?: {
    key: string;
    created: string;
    ageSeconds: number;
    sizeBytes: number;
    revision?: Revision;
    /** When the newest passed restore drill (its `.drill.json` beside a backup) finished. */
    lastPassedDrillAt?: string;
    /** Newer manifests not believed (tag missing or wrong, another cluster's, unreadable), each with why. */
    passedOver?: string[];
  };
  /**
   * Continuous backups (clusters with backup.continuous): the newest chain, the newest revision durable in it and when
   * it was seen, and how far that is behind etcd (0 when etcd has nothing newer). `problem`: no chain yet, the chain's
   * newest segment not believed, or a lag past the alert's threshold.
   */
  continuous?: {
    chain?: string;
    durableThrough?: Revision;
    at?: string;
    lagSeconds?: number;
    /** etcd's revision could not be read: the lag is the newest segment's age, maybe more than what is missing. */
    lagIsUpperBound?: boolean;
    problem?: string;
  };
  /** Between the next two runs of the cluster's backup-<cluster> schedule. */
  backupIntervalSeconds?: number;
  /** From Temporal (recover-<cluster>): whether a recovery runs, and when the last one that restored ended. */
  recovery?: { inProgress: boolean; lastSuccessAt?: string; restoredRevision?: Revision };
  /**
   * What could not be read for this check, and why: without the newest backup (bucket) or the recovery state
   * (Temporal), whether etcd still has its data cannot be concluded, so the check is inconclusive, never "healthy".
   */
  unread?: { newestBackup?: string; recovery?: string };
  /** One human line for every component down and every probe that failed. */
  problems: string[];
}
