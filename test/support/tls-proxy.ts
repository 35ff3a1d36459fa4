import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Throwaway PKI: a CA, another CA nobody trusts, a server certificate for 127.0.0.1/localhost, client certificates. */
export interface TestPki {
  dir: string;
  caFile: string;
  otherCaFile: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** Signed by the CA, valid 2020-01-01 to 2020-01-02. */
  expiredCert: string;
  /** Signed by the other CA. */
  strangerCert: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run('openssl', args, { cwd });
}

async function newCa(dir: string, name: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir);
  await openssl(['req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-days', '2', '-out', `${name}.crt`], dir);
}

async function leaf(dir: string, name: string, ca: string, ext: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir);
  await openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`], dir);
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    ],
    dir,
  );
}

export async function makePki(dir: string): Promise<TestPki> {
  await mkdir(join(dir, 'newcerts'), { recursive: true });
  await newCa(dir, 'ca');
  await newCa(dir, 'other-ca');
  await leaf(dir, 'server', 'ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  const clientExt = 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n';
  await leaf(dir, 'client', 'ca', clientExt);
  await leaf(dir, 'stranger', 'other-ca', clientExt);
  // OpenSSL 3.0's x509 has no -not_before/-not_after (3.4 has); `openssl ca` takes explicit dates, so a certificate
  // that expired years ago is one command, without faking the clock.
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial'), '1000\n');
  await writeFile(
    join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = lb',
      '[lb]',
      `database = ${dir}/index.txt`,
      `new_certs_dir = ${dir}/newcerts`,
      `serial = ${dir}/serial`,
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      'x509_extensions = client_ext',
      '[any]',
      'commonName = supplied',
      '[client_ext]',
      'basicConstraints = CA:FALSE',
      'extendedKeyUsage = clientAuth',
      '',
    ].join('\n'),
  );
  await openssl(['req', '-new', '-key', 'client.key', '-subj', '/CN=expired', '-out', 'expired.csr'], dir);
  await openssl(
    [
      'ca',
      '-batch',
      '-config',
      'ca.cnf',
      '-cert',
      'ca.crt',
      '-keyfile',
      'ca.key',
      '-in',
      'expired.csr',
      '-out',
      'expired.crt',
      '-notext',
    ].concat(['-startdate', '20200101000000Z', '-enddate', '20200102000000Z']),
    dir,
  );
  const f = (n: string) => join(dir, n);
  return {
    dir,
    caFile: f('ca.crt'),
    otherCaFile: f('other-ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
    expiredCert: f('expired.crt'),
    strangerCert: f('stranger.crt'),
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface TlsProxy {
  /** TLS only: the server proves who it is. */
  tlsAddress: string;
  /** mTLS: nginx also wants a client certificate signed by the CA (`ssl_verify_client on`). */
  mtlsAddress: string;
  /** TLS plus an API key: nginx answers 401 unless `authorization: Bearer <apiKey>`, as Temporal Cloud does. */
  apiKeyAddress: string;
  stop(): Promise<void>;
}

/**
 * Debian's nginx as the TLS-terminating gRPC proxy production setups put in front of Temporal (HTTP/2 both ways,
 * `grpc_pass`), on loopback, with its own config, pid file and temp dirs: nothing of the system's nginx is used.
 */
export async function startTlsProxy(dir: string, pki: TestPki, upstream: string, apiKey = 'test-api-key-0123456789'): Promise<TlsProxy> {
  const [tlsPort, mtlsPort, keyPort] = [await freePort(), await freePort(), await freePort()];
  await mkdir(join(dir, 'tmp'), { recursive: true });
  const server = (port: number, extra: string) => `
    server {
      listen 127.0.0.1:${port} ssl http2;
      ssl_certificate ${pki.serverCert};
      ssl_certificate_key ${pki.serverKey};
      ${extra}
      location / { grpc_pass grpc://${upstream}; }
    }`;
  const conf = `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  # Temporal's long polls last about a minute; gRPC bodies can exceed nginx's 1 MiB default.
  grpc_read_timeout 300s;
  grpc_send_timeout 300s;
  client_max_body_size 64m;
  ${server(tlsPort, '')}
  ${server(
    mtlsPort,
    // A header a client sets (TEMPORAL_GRPC_META_*) can be seen here: the tests use it to prove headers arrive.
    `ssl_client_certificate ${pki.caFile};\n      ssl_verify_client on;\n      if ($http_x_lifeboat_probe = "refuse") { return 403; }`,
  )}
  map $http_authorization $lb_key_ok { "Bearer ${apiKey}" 1; default 0; }
  ${server(keyPort, 'if ($lb_key_ok = 0) { return 401; }')}
}
`;
  const confFile = join(dir, 'nginx.conf');
  await writeFile(confFile, conf);
  const child: ChildProcess = spawn('/usr/sbin/nginx', ['-p', dir, '-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Ready once both ports accept connections.
  const deadline = Date.now() + 10_000;
  for (const port of [tlsPort, mtlsPort, keyPort]) {
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`nginx exited: ${stderr}${await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')}`);
      const ok = await new Promise<boolean>((resolve) => {
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
      });
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    tlsAddress: `127.0.0.1:${tlsPort}`,
    mtlsAddress: `127.0.0.1:${mtlsPort}`,
    apiKeyAddress: `127.0.0.1:${keyPort}`,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
