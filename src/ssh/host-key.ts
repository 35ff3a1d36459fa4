import { createHash, createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/** What a node's host key must be, from config: the key itself, its SHA256 fingerprint, or a known_hosts file. */
export type HostKeyPin = { hostKey: string } | { knownHostsFile: string };

export class HostKeyMismatchError extends Error {
  constructor(
    readonly nodeName: string,
    readonly endpoint: string,
    readonly expected: string[],
    readonly presented: string,
  ) {
    super(
      `host key mismatch for node "${nodeName}" (${endpoint}): it presented ${presented}, ` +
        `expected ${expected.length ? expected.join(' or ') : 'a key listed in known_hosts (none found for this host)'}. ` +
        'Nothing was run. If the node was rebuilt on purpose, check its new key out of band (ssh-keyscan on the console) and update hostKey in the config.',
    );
    this.name = 'HostKeyMismatchError';
  }
}

/** OpenSSH's fingerprint form: SHA256:<base64 without padding>. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

function fingerprintOf(pin: string): string {
  if (pin.startsWith('SHA256:')) return pin.replace(/=+$/, '');
  const [, base64] = pin.trim().split(/\s+/);
  return fingerprint(Buffer.from(base64 ?? '', 'base64'));
}

/** known_hosts host patterns: plain names, [host]:port, and hashed entries (|1|salt|hmac). */
function hostMatches(field: string, host: string, port: number): boolean {
  const wanted = port === 22 ? host : `[${host}]:${port}`;
  return field.split(',').some((pattern) => {
    if (pattern.startsWith('|1|')) {
      const [, , salt, hash] = pattern.split('|');
      const mac = createHmac('sha1', Buffer.from(salt ?? '', 'base64'))
        .update(wanted)
        .digest('base64');
      return mac === hash;
    }
    return pattern === wanted;
  });
}

export async function expectedFingerprints(pin: HostKeyPin, host: string, port: number): Promise<string[]> {
  if ('hostKey' in pin) return [fingerprintOf(pin.hostKey)];
  const text = await readFile(pin.knownHostsFile, 'utf8');
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 3 || parts[0].startsWith('#')) continue;
    if (parts[0] === '@revoked' || parts[0] === '@cert-authority') continue;
    if (hostMatches(parts[0], host, port)) found.push(fingerprint(Buffer.from(parts[2], 'base64')));
  }
  return found;
}
