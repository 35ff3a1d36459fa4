import { connect, constants } from 'node:http2';
import { isIP } from 'node:net';
import type { TemporalTarget } from './connection';

export type TlsVerdict =
  | { kind: 'ok' }
  | { kind: 'server-untrusted'; code: string }
  | { kind: 'server-name'; code: string }
  | { kind: 'server-expired'; code: string }
  | { kind: 'client-cert-required'; code: string }
  | { kind: 'client-cert-refused'; code: string }
  | { kind: 'plain-text'; code: string }
  | { kind: 'unauthorized'; code: string }
  | { kind: 'unreachable'; code: string };

/**
 * gRPC hides why a TLS connection failed ("Failed to connect before the deadline"); a plain HTTP/2 request with the
 * same CA, name and client certificate shows it: the handshake's own verification error, the server's TLS alert, or
 * the answer of a proxy that wanted a client certificate (nginx completes the handshake and answers 400).
 */
export async function probeTls(target: TemporalTarget, timeoutMs = 5_000): Promise<TlsVerdict> {
  const tls = target.tls ?? {};
  const host = target.address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const port = target.address.match(/:(\d+)$/)?.[1] ?? '7233';
  const servername = tls.serverNameOverride ?? (isIP(host) ? undefined : host);
  return new Promise<TlsVerdict>((resolve) => {
    const session = connect(`https://${isIP(host) === 6 ? `[${host}]` : host}:${port}`, {
      ...(tls.serverRootCACertificate ? { ca: Buffer.from(tls.serverRootCACertificate) } : {}),
      ...(tls.clientCertPair ? { cert: Buffer.from(tls.clientCertPair.crt), key: Buffer.from(tls.clientCertPair.key) } : {}),
      ...(servername ? { servername } : {}),
    });
    const done = (v: TlsVerdict) => {
      clearTimeout(timer);
      session.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done({ kind: 'unreachable', code: 'timeout' }), timeoutMs);
    session.on('error', (err: NodeJS.ErrnoException) => done(classify(err)));
    session.on('connect', () => {
      const req = session.request({
        [constants.HTTP2_HEADER_PATH]: '/grpc.health.v1.Health/Check',
        ':method': 'POST',
        'content-type': 'application/grpc',
      });
      let body = '';
      let status = 0;
      req.on('response', (h) => (status = Number(h[constants.HTTP2_HEADER_STATUS])));
      req.on('data', (d: Buffer) => (body += d.toString('latin1')));
      req.on('end', () => {
        if (/No required SSL certificate/i.test(body)) done({ kind: 'client-cert-required', code: `HTTP ${status}` });
        else if (/SSL certificate error/i.test(body)) done({ kind: 'client-cert-refused', code: `HTTP ${status}` });
        else if (status === 401 || status === 403) done({ kind: 'unauthorized', code: `HTTP ${status}` });
        else done({ kind: 'ok' });
      });
      req.on('error', (err: NodeJS.ErrnoException) => done(classify(err)));
      req.end(Buffer.alloc(5));
    });
  });
}

function classify(err: NodeJS.ErrnoException): TlsVerdict {
  const code = err.code ?? err.message;
  const text = `${code} ${err.message}`;
  if (/CERT_HAS_EXPIRED|CERT_NOT_YET_VALID/.test(text)) return { kind: 'server-expired', code };
  if (/ALTNAME|Hostname\/IP does not match/.test(text)) return { kind: 'server-name', code };
  if (/UNABLE_TO_VERIFY|SELF_SIGNED|UNABLE_TO_GET_ISSUER|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE/.test(text))
    return { kind: 'server-untrusted', code };
  if (/CERTIFICATE_REQUIRED|certificate required/i.test(text)) return { kind: 'client-cert-required', code };
  if (/BAD_CERTIFICATE|CERTIFICATE_EXPIRED|UNKNOWN_CA|CERTIFICATE_UNKNOWN|bad certificate/i.test(text))
    return { kind: 'client-cert-refused', code };
  if (/wrong version number|WRONG_VERSION_NUMBER|packet length too long/i.test(text)) return { kind: 'plain-text', code };
  return { kind: 'unreachable', code };
}
