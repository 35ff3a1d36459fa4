import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { msToTs } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';

type Payload = temporal.api.common.v1.IPayload;

/**
 * A payload as the raw gRPC API, `temporal workflow start/signal --input-meta encoding=...` or a buggy script can send
 * it: any encoding, any bytes, not necessarily JSON. The SDK's client would never write one.
 */
export function rawPayload(data: string | Uint8Array, encoding = 'json/plain'): Payload {
  return { metadata: { encoding: Buffer.from(encoding) }, data: typeof data === 'string' ? Buffer.from(data) : data };
}

/** Starts a workflow by type name with these payloads as its arguments, through WorkflowService. */
export async function startRaw(
  client: Client,
  o: { workflowType: string; workflowId: string; taskQueue: string; input: Payload[] },
): Promise<void> {
  await client.workflowService.startWorkflowExecution({
    namespace: client.options.namespace,
    workflowId: o.workflowId,
    workflowType: { name: o.workflowType },
    taskQueue: { name: o.taskQueue },
    input: { payloads: o.input },
    workflowExecutionTimeout: msToTs('2 minutes'),
    identity: 'raw-payload test',
    requestId: randomUUID(),
  });
}

/** Signals a running workflow with these payloads as the signal's arguments, through WorkflowService. */
export async function signalRaw(client: Client, workflowId: string, signalName: string, input: Payload[]): Promise<void> {
  await client.workflowService.signalWorkflowExecution({
    namespace: client.options.namespace,
    workflowExecution: { workflowId },
    signalName,
    input: { payloads: input },
    identity: 'raw-payload test',
    requestId: randomUUID(),
  });
}
