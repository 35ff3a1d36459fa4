import type { DataConverter } from '@temporalio/common';
import type { Config } from '../config/schema';
import { loadEncryptionKey } from '../backup/keyring';
import { EncryptionCodec } from './payload-codec';

/**
 * The one data converter of the worker, the CLI, schedules, the alert receiver and the codec server: without
 * `temporal.payloadEncryption` the SDK's default; with it, every payload is encrypted under that key of the ring.
 */
export function payloadCodec(config: Config): EncryptionCodec | undefined {
  const keyId = config.temporal.payloadEncryption?.keyId;
  return keyId === undefined ? undefined : new EncryptionCodec(keyId, (id) => loadEncryptionKey(config, id));
}

/** Failure messages name clusters and nodes too: with encryption on they go into encrypted attributes. */
export const failureConverterPath = require.resolve('./failure-converter');

export function dataConverter(config: Config): DataConverter | undefined {
  const codec = payloadCodec(config);
  return codec ? { payloadCodecs: [codec], failureConverterPath } : undefined;
}
