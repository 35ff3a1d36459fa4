import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { BackupManifest, ManifestAuth } from './manifest';

/**
 * Manifests are authenticated with the backup's own key, which the bucket never holds: whoever can write to the bucket
 * can edit a manifest (a revision, a count, a checksum) but cannot make its tag match, so a recovery never believes
 * numbers that were never true. The tag is an HMAC-SHA256, with a key derived from the backup's encryption key (HKDF,
 * its own purpose string, so the encryption key is never used for two things), over the manifest's canonical JSON
 * (keys sorted, no whitespace) without the `auth` member: a reformatted file still verifies, any changed value does not,
 * and fields a newer engine adds are covered too (the raw JSON is verified, not what this version's schema keeps).
 */
const PURPOSE = 'lifeboat/manifest-auth/v1';

/**
 * What a signed document is: each kind has a purpose string of its own, so a tag made for one kind (a drill report)
 * never verifies as another (a manifest) even where their JSON could be made to coincide.
 */
export type DocumentPurpose = typeof PURPOSE | 'lifeboat/drill-report-auth/v1' | 'lifeboat/segment-auth/v1';

function macKey(key: Buffer, purpose: DocumentPurpose): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), purpose, 32));
}

/** JSON with object keys sorted at every level: the same bytes for the same values, however the file was formatted. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function tagOf(body: unknown, key: Buffer, purpose: DocumentPurpose): Buffer {
  return createHmac('sha256', macKey(key, purpose)).update(canonicalJson(body)).digest();
}

/** A document with its `auth` member (over everything else in it), ready to be written. */
export function signDocument<T extends { auth?: ManifestAuth }>(doc: T, key: Buffer, keyId: string, purpose: DocumentPurpose): T {
  const { auth: _old, ...body } = doc;
  const auth: ManifestAuth = { algorithm: 'hmac-sha256', keyId, tag: tagOf(body, key, purpose).toString('base64') };
  return { ...body, auth } as T;
}

/** The manifest with its `auth` member, ready to be written. */
export function signManifest(manifest: BackupManifest, key: Buffer, keyId: string): BackupManifest {
  return signDocument(manifest, key, keyId, PURPOSE);
}

export type ManifestAuthentication =
  | { status: 'authentic'; keyId: string }
  | { status: 'unsigned' }
  | { status: 'unverifiable'; reason: string }
  | { status: 'forged'; reason: string };

/**
 * Checks a manifest's text as read from the bucket. `loadKey` resolves a key id from the key ring (and throws for an
 * unknown one). Never throws for a bad manifest: the caller decides what an unsigned or edited one means.
 */
export function authenticateManifest(text: string, loadKey: (keyId: string) => Promise<Buffer>): Promise<ManifestAuthentication> {
  return authenticateDocument(text, loadKey, PURPOSE);
}

/** authenticateManifest for any signed document kind. */
export async function authenticateDocument(
  text: string,
  loadKey: (keyId: string) => Promise<Buffer>,
  purpose: DocumentPurpose,
): Promise<ManifestAuthentication> {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { status: 'forged', reason: 'not JSON' };
  }
  const auth = raw.auth as Partial<ManifestAuth> | undefined;
  if (auth === undefined) return { status: 'unsigned' };
  if (auth?.algorithm !== 'hmac-sha256' || typeof auth.keyId !== 'string' || typeof auth.tag !== 'string') {
    return { status: 'forged', reason: 'its auth member is malformed' };
  }
  let key: Buffer;
  try {
    key = await loadKey(auth.keyId);
  } catch (err) {
    return { status: 'unverifiable', reason: `signed with key "${auth.keyId}", which cannot be loaded (${(err as Error).message})` };
  }
  const { auth: _auth, ...body } = raw;
  const expected = tagOf(body, key, purpose);
  const presented = Buffer.from(auth.tag, 'base64');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
    return {
      status: 'forged',
      reason: `its tag does not match its content (edited since it was written, or signed with another key "${auth.keyId}")`,
    };
  }
  return { status: 'authentic', keyId: auth.keyId };
}
