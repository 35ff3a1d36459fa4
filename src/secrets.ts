import { readFile } from 'node:fs/promises';
import type { SecretRef } from './config/schema';

export class MissingSecretError extends Error {
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(`${field}: ${detail}`);
    this.name = 'MissingSecretError';
  }
}

/** Human description of where a secret comes from; safe to log (it never holds the secret). */
export function describeSecretRef(ref: SecretRef): string {
  return 'file' in ref ? `file ${ref.file}` : `environment variable ${ref.env}`;
}

/**
 * Secrets are resolved in activities at the moment of use and never returned to workflows, so they stay out of
 * workflow inputs, results and history. Error messages name the reference, never the content.
 */
export async function resolveSecret(ref: SecretRef, field: string): Promise<Buffer> {
  if ('env' in ref) {
    const value = process.env[ref.env];
    if (value === undefined || value === '')
      throw new MissingSecretError(field, `environment variable ${ref.env} is not set on the worker; export it before starting the worker`);
    return Buffer.from(value, 'utf8');
  }
  try {
    return await readFile(ref.file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new MissingSecretError(
      field,
      `cannot read ${ref.file} on the worker (${code}); check the path and that the worker's user may read it`,
    );
  }
}
