import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load';
import { connectionOptions, describeTarget, temporalTarget } from '../../src/temporal/connection';
import { makePki, type TestPki } from '../support/tls-proxy';

/** Precedence and validation of the Temporal connection options: TEMPORAL_* variables > config file > defaults. */
describe('Temporal connection options', () => {
  let pki: TestPki;
  beforeAll(async () => {
    pki = await makePki(await mkdtemp(join(tmpdir(), 'conn-pki-')));
  });
  const config = (temporal: Record<string, unknown> = {}, rest: Record<string, unknown> = {}) => parseConfig({ temporal, ...rest }, 'test');

  it('defaults to the local dev server in plain text', async () => {
    const t = await temporalTarget(config(), {});
    expect(connectionOptions(t)).toEqual({ address: '127.0.0.1:7233' });
    expect(t.namespace).toBe('default');
    expect(describeTarget(t)).toBe('127.0.0.1:7233, namespace default, plain text');
  });

  it('takes address and namespace from TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE over the file, and says so', async () => {
    const t = await temporalTarget(config({ address: 'file:7233', namespace: 'file-ns' }), {
      TEMPORAL_ADDRESS: 'env:7233',
      TEMPORAL_NAMESPACE: 'env-ns',
    });
    expect([t.address, t.namespace, t.from.address, t.from.namespace]).toEqual([
      'env:7233',
      'env-ns',
      'TEMPORAL_ADDRESS',
      'TEMPORAL_NAMESPACE',
    ]);
    const f = await temporalTarget(config({ address: 'file:7233' }), { TEMPORAL_ADDRESS: '' });
    expect([f.address, f.from.address]).toEqual(['file:7233', 'temporal.address']); // an empty variable is unset
  });

  it('an API key (secret reference) turns TLS on with the system roots, as for Temporal Cloud', async () => {
    const keyFile = join(pki.dir, 'api.key');
    await writeFile(keyFile, 'key-from-file\n');
    const t = await temporalTarget(config({ address: 'ns.acct.tmprl.cloud:7233', apiKey: { file: keyFile } }), {});
    expect(connectionOptions(t)).toEqual({ address: 'ns.acct.tmprl.cloud:7233', tls: {}, apiKey: 'key-from-file' });
    expect(describeTarget(t)).toBe('ns.acct.tmprl.cloud:7233, namespace default, TLS (system roots), API key from temporal.apiKey');
    const e = await temporalTarget(config({ apiKey: { file: keyFile } }), { TEMPORAL_API_KEY: 'key-from-env' });
    expect([e.apiKey, e.from.apiKey]).toEqual(['key-from-env', 'TEMPORAL_API_KEY']);
    // TEMPORAL_TLS=false wins: plain text with a key (a local proxy that adds TLS itself).
    const off = await temporalTarget(config({ apiKey: { file: keyFile } }), { TEMPORAL_TLS: 'false' });
    expect(connectionOptions(off)).toEqual({ address: '127.0.0.1:7233', apiKey: 'key-from-file' });
  });

  it('a missing API key variable names the field and the variable, never a value', async () => {
    await expect(temporalTarget(config({ apiKey: { env: 'NO_SUCH_KEY_VAR' } }), {})).rejects.toThrow(
      'temporal.apiKey: environment variable NO_SUCH_KEY_VAR is not set; export it before starting',
    );
  });

  it('reads the CA, server name and client pair from the file; the envconfig variables override each one', async () => {
    const file = config({
      tls: {
        caFile: pki.otherCaFile,
        serverName: 'file-name',
        clientCert: { file: pki.strangerCert },
        clientKey: { file: pki.strangerCert.replace('.crt', '.key') },
      },
    });
    const t = await temporalTarget(file, {});
    expect(t.from).toMatchObject({
      ca: 'temporal.tls.caFile',
      serverName: 'temporal.tls.serverName',
      clientCert: 'temporal.tls.clientCert',
    });
    const e = await temporalTarget(file, {
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caFile,
      TEMPORAL_TLS_SERVER_NAME: 'env-name',
      TEMPORAL_TLS_CLIENT_CERT_DATA: await readText(pki.clientCert),
      TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
    });
    expect(e.from).toMatchObject({
      ca: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
      serverName: 'TEMPORAL_TLS_SERVER_NAME',
      clientCert: 'TEMPORAL_TLS_CLIENT_CERT_DATA',
      clientKey: 'TEMPORAL_TLS_CLIENT_KEY_PATH',
    });
    expect(Buffer.from(e.tls!.serverRootCACertificate!).toString()).toBe(await readText(pki.caFile));
    expect(e.tls!.serverNameOverride).toBe('env-name');
  });

  it("the legacy TEMPORAL_TLS_CERT/KEY/CA win over the envconfig names, as in Temporal's CLI", async () => {
    const t = await temporalTarget(config(), {
      TEMPORAL_TLS_CA: pki.caFile,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.otherCaFile,
      TEMPORAL_TLS_CERT: pki.clientCert,
      TEMPORAL_TLS_KEY: pki.clientKey,
      TEMPORAL_TLS_CLIENT_CERT_PATH: pki.strangerCert,
    });
    expect(t.from).toMatchObject({
      ca: 'TEMPORAL_TLS_CA',
      clientCert: 'TEMPORAL_TLS_CERT',
      clientKey: 'TEMPORAL_TLS_KEY',
      tls: 'TEMPORAL_TLS_CA',
    });
  });

  it('refuses half a client pair, a key of another certificate, a non-PEM file and disabled host verification, naming the field', async () => {
    expect(() => config({ tls: { clientCert: { file: pki.clientCert } } })).toThrow(
      /temporal\.tls\.clientKey.*set both clientCert and clientKey/,
    );
    await expect(temporalTarget(config(), { TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert })).rejects.toThrow(
      /^TEMPORAL_TLS_CLIENT_CERT_PATH: a client certificate without its key/,
    );
    await expect(
      temporalTarget(config({ tls: { clientCert: { file: pki.clientCert }, clientKey: { file: pki.serverKey } } }), {}),
    ).rejects.toThrow('temporal.tls.clientKey: this key does not belong to the client certificate in temporal.tls.clientCert');
    await expect(temporalTarget(config({ tls: { caFile: pki.clientKey } }), {})).rejects.toThrow(
      /^temporal\.tls\.caFile: expected a PEM certificate/,
    );
    await expect(temporalTarget(config({ tls: { caFile: '/nonexistent/ca.pem' } }), {})).rejects.toThrow(
      /^temporal\.tls\.caFile: cannot read \/nonexistent\/ca\.pem \(ENOENT\)/,
    );
    await expect(temporalTarget(config(), { TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' })).rejects.toThrow(
      /^TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: not supported.*TEMPORAL_TLS_SERVER_NAME/,
    );
    await expect(temporalTarget(config(), { TEMPORAL_TLS: 'yes' })).rejects.toThrow(/^TEMPORAL_TLS: expected true or false/);
  });

  it('an expired client certificate is refused with its date, before any connection', async () => {
    await expect(
      temporalTarget(config(), { TEMPORAL_TLS_CLIENT_CERT_PATH: pki.expiredCert, TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey }),
    ).rejects.toThrow(/^TEMPORAL_TLS_CLIENT_CERT_PATH: the client certificate \(CN=expired\) expired on Jan {2}2 00:00:00 2020 GMT/);
  });

  it("reads Temporal's TOML profile when TEMPORAL_CONFIG_FILE or TEMPORAL_PROFILE names it; variables beat it, it beats the file", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'conn-toml-'));
    const toml = join(dir, 'temporal.toml');
    await writeFile(
      toml,
      [
        '[profile.prod]',
        'address = "prod.example:7233"',
        'namespace = "prod-ns"',
        '[profile.prod.tls]',
        `server_ca_cert_path = "${pki.caFile}"`,
        'server_name = "temporal.prod"',
        '[profile.prod.grpc_meta]',
        'x-tenant = "acme"',
        'x-drop-me = "1"',
      ].join('\n'),
    );
    const file = config({ address: 'file:7233', namespace: 'file-ns' });
    // Not read unless named: a personal default profile never moves the worker.
    expect((await temporalTarget(file, { HOME: dir })).address).toBe('file:7233');
    const t = await temporalTarget(file, {
      TEMPORAL_CONFIG_FILE: toml,
      TEMPORAL_PROFILE: 'prod',
      TEMPORAL_NAMESPACE: 'env-ns',
      TEMPORAL_GRPC_META_X_DROP_ME: '',
      TEMPORAL_GRPC_META_X_REQUEST_SOURCE: 'lifeboat',
    });
    expect([t.address, t.namespace]).toEqual(['prod.example:7233', 'env-ns']);
    expect(t.from).toMatchObject({
      address: `${toml} profile prod: address`,
      namespace: 'TEMPORAL_NAMESPACE',
      ca: `${toml} profile prod: tls.server_ca_cert_path`,
      serverName: `${toml} profile prod: tls.server_name`,
    });
    expect(t.tls!.serverNameOverride).toBe('temporal.prod');
    expect(t.metadata).toEqual({ 'x-tenant': 'acme', 'x-request-source': 'lifeboat' });
    expect(connectionOptions(t).metadata).toEqual(t.metadata);
    expect(describeTarget(t)).toMatch(/gRPC headers x-request-source, x-tenant$/);
    await expect(temporalTarget(file, { TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'staging' })).rejects.toThrow(
      /^TEMPORAL_PROFILE: .*temporal\.toml \(profile staging\): Profile 'staging' not found/,
    );
    await writeFile(
      toml,
      '[profile.default]\naddress = "a:1"\n[profile.default.tls]\nclient_cert_path = "/nonexistent/c.pem"\nclient_key_path = "/nonexistent/k.pem"\n',
    );
    await expect(temporalTarget(file, { TEMPORAL_CONFIG_FILE: toml })).rejects.toThrow(
      new RegExp(`^${toml.replace(/[/.]/g, '\\$&')} profile default: tls\\.client_cert_path: cannot read /nonexistent/c\\.pem`),
    );
  });

  it('sends TEMPORAL_GRPC_META_* as gRPC headers (names lower-cased, every _ a -)', async () => {
    const t = await temporalTarget(config(), { TEMPORAL_GRPC_META_X_AUTH_EXTRA: 'v1' });
    expect(t.metadata).toEqual({ 'x-auth-extra': 'v1' });
    expect((await temporalTarget(config(), {})).metadata).toBeUndefined();
  });

  it('payloadEncryption must name a key of the ring', () => {
    expect(() => config({ payloadEncryption: { keyId: 'nope' } })).toThrow(/temporal\.payloadEncryption\.keyId.*unknown key id "nope"/);
    expect(config({ payloadEncryption: { keyId: 'k1' } }, { encryptionKeys: { k1: { env: 'K1' } } }).temporal.payloadEncryption).toEqual({
      keyId: 'k1',
    });
  });
});

async function readText(path: string): Promise<string> {
  return (await import('node:fs/promises')).readFile(path, 'utf8');
}
