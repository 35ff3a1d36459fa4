/**
 * A snapshot as a byte stream that can be uploaded while etcd sends it (issue 23), without a file on the worker or the
 * node. grpc-js reads the next message only when the stream below wants one, so a slow upload slows etcd's sender
 * instead of filling memory; etcd holds its bolt read transaction (and the pages it pins) open that long. The stream
 * errors, never ends, when anything is wrong (see SnapshotVerifier); `summary` resolves only once the hash matched.
 */
import { pipeline, type Readable } from 'node:stream';
import { abortReason, type EtcdClient } from './client';
import { SnapshotVerifier, type SnapshotSummary } from './snapshot-verifier';

export interface SnapshotDownload {
  /** The bytes `etcdctl snapshot save` would write: the database, then its 32-byte SHA-256. */
  stream: Readable;
  /** Resolves when the hash matched (before the stream's last bytes are read); rejects with the stream's error. */
  summary: Promise<SnapshotSummary>;
  /**
   * Resolves with the database's size when the first message arrived, unread or not: etcd has then taken its point in
   * time (the read transaction the stream copies), so a Status read now bounds the snapshot's revision from above.
   */
  started: Promise<number>;
}

export function snapshotStream(client: EtcdClient, signal?: AbortSignal): SnapshotDownload {
  const verifier = new SnapshotVerifier(client.endpoint);
  const summary = new Promise<SnapshotSummary>((resolve, reject) => {
    verifier.once('verified', resolve);
    verifier.once('error', reject);
    verifier.once('close', () => reject(new Error(`etcd snapshot from ${client.endpoint}: the stream closed before the hash was checked`)));
  });
  const started = new Promise<number>((resolve, reject) => {
    verifier.once('started', resolve);
    summary.catch(reject);
  });
  // The stream carries the error; a caller that only reads the stream must not crash on an unawaited summary.
  summary.catch(() => {});
  started.catch(() => {});
  if (signal?.aborted) {
    verifier.destroy(abortReason(signal));
    return { stream: verifier, summary, started };
  }

  const call = client.maintenance.Snapshot({});
  // Registered before pipeline's own listener, so the stream fails with this message (and grpc-js, which emits
  // 'error' even after a cancel, never meets a stream without a listener).
  call.on('error', (err: Error & { details?: string }) => {
    verifier.destroy(
      new Error(`etcd snapshot from ${client.endpoint} broke after ${verifier.bytesSeen} bytes: ${err.details || err.message}`, {
        cause: err,
      }),
    );
  });
  const onAbort = () => {
    verifier.destroy(abortReason(signal!));
    call.cancel();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  pipeline(call, verifier, (err) => {
    signal?.removeEventListener('abort', onAbort);
    // Destroying a grpc-js stream does not end its call: a consumer that gave up must not leave etcd sending.
    if (err) call.cancel();
  });
  return { stream: verifier, summary, started };
}
