import type { ClusterConfig } from '../config/schema';

/** Snapshots hold every Secret and the archive holds the cluster's private keys: say so when they go out in clear. */
export function warnAboutEncryption(cluster: ClusterConfig): void {
  if (cluster.backup.encryptionKey) return;
  if (cluster.backup.allowUnencrypted) {
    console.error(
      `warning: cluster "${cluster.name}": backups are stored UNENCRYPTED (backup.allowUnencrypted); they contain every Secret and the cluster's private keys`,
    );
  } else {
    console.error(
      `warning: cluster "${cluster.name}": no backup.encryptionKey set; its backups will fail until one is set (or backup.allowUnencrypted: true)`,
    );
  }
}
