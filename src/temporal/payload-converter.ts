import { DefaultPayloadConverter, type ConverterHint, type Payload, type SerializationContext } from '@temporalio/common';
import { undecodable } from '../../workflows/input-shape';

/**
 * The SDK's default converter, except that a payload it cannot decode (data that is not JSON under json/plain, an
 * encoding it does not know, no metadata) becomes a marker value instead of an error. The SDK decodes a workflow's
 * input and signals before any workflow code runs, and throws there: the workflow task fails and is retried forever,
 * the run stays RUNNING. With the marker, the workflow's input check fails the run naming the problem (InvalidInput),
 * and a signal's check ignores it as malformed. Payloads lifeboat writes always decode, so nothing else changes.
 *
 * Loaded by path (the worker's dataConverter.payloadConverterPath): workflow code runs it inside the sandbox, so it
 * is bundled with the workflows (test/support/worker.ts and scripts/bundle-workflows.js pass the same path).
 */
class LenientPayloadConverter extends DefaultPayloadConverter {
  override fromPayload<T>(payload: Payload, context?: SerializationContext, hint?: ConverterHint<T>): T {
    try {
      return super.fromPayload<T>(payload, context, hint);
    } catch (err) {
      return undecodable(`${encodingOf(payload)}: ${(err as Error).message}`) as T;
    }
  }
}

function encodingOf(payload: Payload): string {
  const bytes = payload.metadata?.encoding;
  if (!bytes) return 'no encoding';
  // The encoding is whatever the sender wrote: shown cut, and only printable ASCII.
  return String.fromCharCode(...Array.from(bytes.subarray(0, 40))).replace(/[^\x20-\x7e]/g, '?');
}

export const payloadConverter = new LenientPayloadConverter();
