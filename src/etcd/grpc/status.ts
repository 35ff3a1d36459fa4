/**
 * The member's current revision and database size: read before and after a snapshot, since the snapshot stream never
 * says which revision it holds (etcd issue 9037), and to size what a backup will move.
 */
import { toRevision, type Revision } from '../revision';
import { unaryCall, type EtcdClient } from './client';
import type { StatusResponse } from './proto';

export interface EtcdStatus {
  revision: Revision;
  /** etcd's server version, e.g. 3.6.16. */
  version: string;
  /** Bytes of the database file (what a snapshot sends, minus the 32-byte hash). */
  dbSize: number;
  /** Bytes in use; the rest is free pages a defragmentation would give back. */
  dbSizeInUse: number;
  /** Alarms and errors the member reports (e.g. NOSPACE), empty when healthy. */
  errors: string[];
}

export async function status(client: EtcdClient): Promise<EtcdStatus> {
  const res = await unaryCall<StatusResponse>(client, 'Status', (md, opts, cb) => client.maintenance.Status({}, md, opts, cb));
  return {
    revision: toRevision(res.header?.revision, 'etcd Status header.revision'),
    version: res.version,
    dbSize: Number(res.dbSize),
    dbSizeInUse: Number(res.dbSizeInUse),
    errors: res.errors,
  };
}
