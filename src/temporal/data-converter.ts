import type { DataConverter } from '@temporalio/common';
import type { Config } from '../config/schema';
import { loadEncryptionKey } from '../backup/keyring';
import { EncryptionCodec } from './payload-codec';

/**
 * The one data converter of the CLI, schedules, the alert receiver and the codec server: without
 * `temporal.payloadEncryption` the SDK's default; with it, every payload is encrypted under that key of the ring.
 * The worker adds its payload converter (workerDataConverter).
 */
export function payloadCodec(config: Config): EncryptionCodec | undefined {
  const keyId = config.temporal.payloadEncryption?.keyId;
  return keyId === undefined ? undefined : new EncryptionCodec(keyId, (id) => loadEncryptionKey(config, id));
}

/** Failure messages name clusters and nodes too: with encryption on they go into encrypted attributes. */
export const failureConverterPath = require.resolve('./failure-converter');

/**
 * The worker's payload converter: a payload that does not decode (not JSON) reaches the workflow as a value its input
 * check refuses, instead of failing the workflow task forever. Bundled with the workflows, like the failure converter.
 * Clients keep the SDK's own: a result that does not decode is an error there, not a value to print.
 */
export const payloadConverterPath = require.resolve('./payload-converter');

export function dataConverter(config: Config): DataConverter | undefined {
  const codec = payloadCodec(config);
  return codec ? { payloadCodecs: [codec], failureConverterPath } : undefined;
}

export function workerDataConverter(config: Config): DataConverter {
  return { ...dataConverter(config), payloadConverterPath };
}
