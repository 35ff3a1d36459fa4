import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';

/**
 * The activity options every workflow uses, declared once. Each is a kind of step, named by what it waits on; the
 * retry policies say how long a step keeps trying before the run fails with the step's own error.
 */
export const ACTIVITY_OPTIONS = {
  /** Reads and small changes (config, bucket, one SSH command): short, retried for about five minutes. */
  quick: { startToCloseTimeout: '2 minutes', retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 10 } },
  /**
   * Like quick, but heartbeating (verify, rollback): the cluster waits on these, so a lost worker (crashed, killed,
   * its machine gone) is noticed within the heartbeat timeout and the step retried elsewhere, not after 2 minutes.
   */
  quickHeartbeating: {
    startToCloseTimeout: '2 minutes',
    heartbeatTimeout: '20 seconds',
    retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 10 },
  },
  /** Proving a point from the bucket: every segment of a chain read and checked (an hour's chain is ~720 of them). */
  chainRead: {
    startToCloseTimeout: '15 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 5 },
  },
  /** etcdctl snapshot save on the node: long, heartbeating, few attempts (each takes a new snapshot). */
  snapshot: {
    startToCloseTimeout: '20 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', maximumAttempts: 5 },
  },
  /** Streams between the node, the worker and S3: hours for a large cluster, heartbeating with the bytes moved. */
  transfer: {
    startToCloseTimeout: '3 hours',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 20 },
  },
  /** Steps that wait for the control plane to stop or start: bounded by their own timeoutSeconds, heartbeating. */
  waiting: {
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 10 },
  },
  /** A restore drill on the worker (fetch, restore, throwaway etcd and kube-apiserver): long, heartbeating; a retry starts over. */
  drill: {
    startToCloseTimeout: '3 hours',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', maximumAttempts: 3 },
  },
  /**
   * Continuous backups' capture (a watch shipping segments for half an hour): heartbeating every few seconds, so a
   * killed worker's watch is taken over within the timeout; retried without end (an etcd or a store that is down comes
   * back; the lag alert says how long it has been), never past a non-retryable error. A cancelled capture (continuous
   * backups turned off) ends only once its watch has stopped, so a capture started right after never writes beside it.
   */
  capture: {
    startToCloseTimeout: '45 minutes',
    heartbeatTimeout: '30 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    // At most 10 s between tries: an attempt's number grows with every fault over a run's half hour and never resets,
    // so a longer ceiling would leave a minute's gap in the recovery point after a few SSH drops or etcd restarts
    // (measured: 60 s after the sixth). A try against a store or etcd still down costs one request.
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds' },
  },
  /** A health check is only worth having now: the next scheduled run is the real retry. */
  health: { startToCloseTimeout: '1 minute', retry: { initialInterval: '2 seconds', maximumAttempts: 2 } },
  /** An alert response's reads: it must decide within minutes, not retry for long. */
  response: { startToCloseTimeout: '1 minute', retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 } },
  /** A probe that cannot finish is itself evidence; retrying it for long would only delay the decision. */
  diagnosis: { startToCloseTimeout: '45 seconds', retry: { initialInterval: '1 second', maximumAttempts: 2 } },
  /** Notifications to the outside (webhooks): a few tries, never holding up the response. */
  outbound: { startToCloseTimeout: '30 seconds', retry: { initialInterval: '2 seconds', maximumAttempts: 3 } },
} satisfies Record<string, ActivityOptions>;
