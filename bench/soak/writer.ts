import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { unaryCall, type EtcdClient } from '../../src/etcd/grpc/client';
import type { TxnResponse } from '../../src/etcd/grpc/proto';
import type { Revision } from '../../src/etcd/revision';

/** One write etcd acknowledged: its key, value and the revision etcd gave it, in the epoch it was made in. */
export interface AckedWrite {
  key: string;
  value: string;
  revision: Revision;
  /** Epochs end where the control plane is destroyed: revisions are compared only within one. */
  epoch: number;
  at: string;
}

export const SOAK_PREFIX = '/registry/soak/';

export interface WriteLoad {
  readonly acked: AckedWrite[];
  readonly failed: number;
  /** Waits for the write in flight and holds the next ones (around a destruction, so none straddles it). */
  pause(): Promise<void>;
  resume(): void;
  /** The writes from now on belong to a new epoch (the control plane about to be destroyed). */
  nextEpoch(): number;
  stop(): Promise<void>;
}

/**
 * A steady write load straight to etcd (gRPC, as kube-apiserver writes): one new key per write, never rewritten, at
 * `perSecond`. Each write etcd acknowledges is appended to `file` as a JSON line; a write that fails (etcd down, the
 * node's network gone) is not acknowledged and not recorded, and the load goes on.
 */
export function startWriteLoad(etcd: EtcdClient, file: string, perSecond: number, tag: string): WriteLoad {
  const out = createWriteStream(file, { flags: 'a' });
  const acked: AckedWrite[] = [];
  let failed = 0;
  let epoch = 0;
  let stopped = false;
  let stopping: Promise<void> | undefined;
  let held: Promise<void> | undefined;
  let release: (() => void) | undefined;
  let current: Promise<void> = Promise.resolve();
  const loop = (async () => {
    for (let n = 1; !stopped; n++) {
      const due = Date.now() + 1000 / perSecond;
      if (held) await held;
      if (stopped) break;
      const key = `${SOAK_PREFIX}w-${n}`;
      const value = `${tag}-${n}`;
      const write = unaryCall<TxnResponse>(etcd, 'Txn', (md, o, cb) =>
        etcd.kv.Txn({ success: [{ requestPut: { key: Buffer.from(key), value: Buffer.from(value) } }] }, md, o, cb),
      ).then(
        (res) => {
          const w = { key, value, revision: res.header!.revision, epoch, at: new Date().toISOString() };
          acked.push(w);
          out.write(`${JSON.stringify(w)}\n`);
        },
        () => {
          failed++;
        },
      );
      current = write;
      await write;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  return {
    acked,
    get failed() {
      return failed;
    },
    async pause() {
      held ??= new Promise<void>((r) => (release = r));
      await current;
    },
    resume() {
      release?.();
      held = release = undefined;
    },
    nextEpoch: () => ++epoch,
    // Once: stopping again (the run's clean-up after its checks) waits for the same end.
    stop: () =>
      (stopping ??= (async () => {
        stopped = true;
        release?.();
        await loop;
        out.end();
        await once(out, 'finish');
      })()),
  };
}
