import type { S3Client } from '@aws-sdk/client-s3';
import { listObjects, readManifestText, type ListedObject } from './catalog';
import { authenticateManifest } from './manifest-auth';
import { parseManifest, type BackupManifest } from './manifest';
import { backupObjectKeys, clusterBackupPrefix } from './object-keys';
import type { ClusterConfig, Config, StorageConfig } from '../config/schema';
import { loadEncryptionKey } from './keyring';

/**
 * The one way a backup is read back from the bucket to be believed. Whoever can write to the bucket (without the key)
 * can copy a genuine manifest anywhere: to a key that sorts newest, or into another cluster's folder. The tag covers
 * the content, not the place, so a manifest is believed only where its own content says it was written (the key is a
 * function of its cluster, time, revision and codec: src/backup/object-keys.ts), and everything that decides order or
 * identity is read from that authenticated content, never from the key's name alone.
 */
export interface TrustRules {
  storage: Pick<StorageConfig, 'bucket' | 'prefix'>;
  cluster: string;
  /** The cluster encrypts, so it signs every manifest: an unsigned one is not believed unless a person accepts it. */
  signsManifests: boolean;
  /** A person's go-ahead for an unsigned manifest (one written before manifests were signed). */
  acceptUnsigned?: boolean;
  loadKey: (keyId: string) => Promise<Buffer>;
}

export type Authentication = { status: 'authentic'; keyId: string } | { status: 'unsigned' };

export interface TrustedBackup {
  manifestKey: string;
  manifest: BackupManifest;
  authentication: Authentication;
}

export interface PassedOver {
  manifestKey: string;
  reason: string;
}

/** A manifest that is not believed, with why (the message names the key). */
export class UntrustedBackup extends Error {
  constructor(
    readonly manifestKey: string,
    readonly reason: string,
    /**
     * 'missing': no such object; 'unsigned': only a person's go-ahead would make it usable; 'unverifiable': signed
     * with a key this key ring does not hold (rotated on another worker); 'untrusted': anything else.
     */
    readonly kind: 'missing' | 'unsigned' | 'unverifiable' | 'untrusted',
  ) {
    super(`backup ${manifestKey}: ${reason}`);
    this.name = 'UntrustedBackup';
  }
}

/**
 * Why a manifest's place does not match its content (undefined when it does): another cluster's, or stored under a
 * key other than the one its cluster, time, revision and codec give, or naming objects of another backup.
 */
export function placeProblem(manifestKey: string, m: BackupManifest, rules: Pick<TrustRules, 'storage' | 'cluster'>): string | undefined {
  if (m.cluster !== rules.cluster) return `a backup of cluster "${m.cluster}", not of "${rules.cluster}"`;
  let expected;
  try {
    expected = backupObjectKeys({
      prefix: rules.storage.prefix,
      cluster: m.cluster,
      takenAt: m.created,
      revision: m.etcd.revision,
      compression: m.snapshot.compression,
      encrypted: m.snapshot.encryption !== null,
    });
  } catch (err) {
    return `its content gives no key (${(err as Error).message})`;
  }
  if (manifestKey !== expected.manifest)
    return `stored as ${manifestKey}, but its content (created ${m.created}, revision ${m.etcd.revision}) belongs at ${expected.manifest}: copied or renamed, so not believed`;
  if (m.snapshot.key !== expected.snapshot) return `its snapshot is ${m.snapshot.key}, not this backup's ${expected.snapshot}`;
  if (m.controlPlaneFiles && m.controlPlaneFiles.key !== expected.controlPlaneFiles)
    return `its control-plane archive is ${m.controlPlaneFiles.key}, not this backup's ${expected.controlPlaneFiles}`;
  return undefined;
}

const notFound = (err: unknown) =>
  (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404 || (err as Error).name === 'NoSuchKey';

/** Reads one manifest and believes it or throws UntrustedBackup: the text authenticated is the text parsed. */
export async function readTrustedBackup(s3: S3Client, rules: TrustRules, manifestKey: string): Promise<TrustedBackup> {
  let text: string;
  try {
    text = await readManifestText(s3, rules.storage.bucket, manifestKey);
  } catch (err) {
    if (notFound(err)) throw new UntrustedBackup(manifestKey, `no such backup in s3://${rules.storage.bucket}`, 'missing');
    throw err;
  }
  const auth = await authenticateManifest(text, rules.loadKey);
  if (auth.status === 'unverifiable')
    throw new UntrustedBackup(manifestKey, `its manifest cannot be checked: ${auth.reason}`, 'unverifiable');
  if (auth.status === 'forged') throw new UntrustedBackup(manifestKey, `its manifest cannot be trusted: ${auth.reason}`, 'untrusted');
  if (auth.status === 'unsigned' && rules.signsManifests && !rules.acceptUnsigned)
    throw new UntrustedBackup(
      manifestKey,
      'its manifest is not signed (written before manifests were signed, or its tag was removed); use it only if you trust the bucket: acceptUnsignedManifest: true (--accept-unsigned-manifest)',
      'unsigned',
    );
  let manifest: BackupManifest;
  try {
    manifest = parseManifest(manifestKey, text);
  } catch (err) {
    throw new UntrustedBackup(manifestKey, (err as Error).message, 'untrusted');
  }
  const misplaced = placeProblem(manifestKey, manifest, rules);
  if (misplaced) throw new UntrustedBackup(manifestKey, misplaced, 'untrusted');
  return { manifestKey, manifest, authentication: auth.status === 'authentic' ? auth : { status: 'unsigned' } };
}

const NOT_A_MANIFEST_KEY = 'not a lifeboat manifest key (<time>-rev<revision>.manifest.json)';
const MANIFEST_KEY = /(\d{8}T\d{6}Z)-rev(\d{1,19})\.manifest\.json$/;

/**
 * The cluster's manifest keys, newest first. The order is only where to look first: a manifest is believed only at
 * the key its authenticated content gives (placeProblem), so the first believed one in this order is the newest by
 * content. Keys that are not lifeboat manifest keys come back apart, to be named.
 */
export function manifestKeysNewestFirst(objects: ListedObject[]): { keys: string[]; foreign: string[] } {
  const keys: string[] = [];
  const foreign: string[] = [];
  for (const o of objects) if (o.key.endsWith('.manifest.json')) (MANIFEST_KEY.test(o.key) ? keys : foreign).push(o.key);
  return { keys: keys.sort(manifestOrder), foreign };
}

/** Sort order of manifest keys, newest first: by time, then by revision as a number (int64: compared as bigint). */
export function manifestOrder(a: string, b: string): number {
  const [ma, mb] = [MANIFEST_KEY.exec(a), MANIFEST_KEY.exec(b)];
  if (!ma || !mb) return ma ? -1 : mb ? 1 : b.localeCompare(a);
  if (ma[1] !== mb[1]) return ma[1] < mb[1] ? 1 : -1;
  const [ra, rb] = [BigInt(ma[2]), BigInt(mb[2])];
  return ra === rb ? 0 : ra < rb ? 1 : -1;
}

/**
 * The cluster's backups newest first, each believed or passed over with why; lazily, so a caller that needs only the
 * newest reads one manifest. `objects`: the cluster's listing, when the caller has it already.
 */
export async function* backupsNewestFirst(
  s3: S3Client,
  rules: TrustRules,
  objects?: ListedObject[],
): AsyncGenerator<{ trusted: TrustedBackup } | { passedOver: PassedOver }> {
  const listed = objects ?? (await listObjects(s3, rules.storage.bucket, clusterBackupPrefix(rules.storage.prefix, rules.cluster)));
  const { keys, foreign } = manifestKeysNewestFirst(listed);
  for (const manifestKey of foreign) yield { passedOver: { manifestKey, reason: NOT_A_MANIFEST_KEY } };
  for (const manifestKey of keys) {
    try {
      yield { trusted: await readTrustedBackup(s3, rules, manifestKey) };
    } catch (err) {
      if (!(err instanceof UntrustedBackup)) throw err;
      // Gone since the listing (retention removed it meanwhile): not a finding.
      if (err.kind !== 'missing') yield { passedOver: { manifestKey, reason: err.reason } };
    }
  }
}

/** All of a cluster's backups, believed ones newest first, and the ones passed over (read 16 at a time). */
export async function trustedBackups(
  s3: S3Client,
  rules: TrustRules,
  objects?: ListedObject[],
): Promise<{ backups: TrustedBackup[]; passedOver: PassedOver[] }> {
  const listed = objects ?? (await listObjects(s3, rules.storage.bucket, clusterBackupPrefix(rules.storage.prefix, rules.cluster)));
  const { keys, foreign } = manifestKeysNewestFirst(listed);
  const backups: TrustedBackup[] = [];
  const passedOver: PassedOver[] = foreign.map((manifestKey) => ({ manifestKey, reason: NOT_A_MANIFEST_KEY }));
  for (let i = 0; i < keys.length; i += 16) {
    const read = await Promise.all(
      keys.slice(i, i + 16).map(async (k) => {
        try {
          return await readTrustedBackup(s3, rules, k);
        } catch (err) {
          if (err instanceof UntrustedBackup) return err;
          throw err;
        }
      }),
    );
    for (const r of read) {
      if (!(r instanceof UntrustedBackup)) backups.push(r);
      else if (r.kind !== 'missing') passedOver.push({ manifestKey: r.manifestKey, reason: r.reason });
    }
  }
  return { backups, passedOver };
}

/** The newest believed backup, and the newer ones passed over on the way. */
export async function newestTrustedBackup(
  s3: S3Client,
  rules: TrustRules,
  objects?: ListedObject[],
): Promise<{ newest?: TrustedBackup; passedOver: PassedOver[] }> {
  const passedOver: PassedOver[] = [];
  for await (const e of backupsNewestFirst(s3, rules, objects)) {
    if ('trusted' in e) return { newest: e.trusted, passedOver };
    passedOver.push(e.passedOver);
  }
  return { passedOver };
}

/** The rules for a configured cluster: its storage, whether it signs (it encrypts), keys from the config's key ring. */
export function trustRulesFor(config: Config, cluster: ClusterConfig, acceptUnsigned = false): TrustRules {
  return {
    storage: cluster.storage,
    cluster: cluster.name,
    signsManifests: Boolean(cluster.backup.encryptionKey),
    acceptUnsigned,
    loadKey: (id) => loadEncryptionKey(config, id),
  };
}
