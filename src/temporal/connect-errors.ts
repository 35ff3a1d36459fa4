import type { TemporalTarget } from './connection';
import { probeTls } from './tls-probe';

/**
 * Nothing answered at the address (refused, timed out, name not resolved yet): the server may simply not be up, which
 * a worker waits out (src/temporal/wait-for-server.ts); every other connect error is a setting to fix.
 */
export class TemporalUnreachableError extends Error {
  override name = 'TemporalUnreachableError';
}

/** What gRPC and rustls say when no server is listening (yet) or its name does not resolve (yet). */
const UNREACHABLE =
  /before the deadline|ECONNREFUSED|Connection refused|UNAVAILABLE|No connection established|ENOTFOUND|EAI_AGAIN|failed to lookup|Name or service not known|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|tcp connect error/i;

/**
 * gRPC (the client) and rustls (the worker) report TLS and auth failures in their own words, or not at all ("Failed
 * to connect before the deadline"). The operator needs the setting to fix: with TLS on, a probe with the same
 * settings finds the cause; the rest is recognised from the message. The original text is kept at the end.
 */
export async function explainConnectError(err: unknown, target: TemporalTarget): Promise<Error> {
  // The SDKs wrap the cause ("Failed to connect to Temporal server" around "16 UNAUTHENTICATED: ..."): keep the chain.
  const chain: string[] = [];
  for (let e: unknown = err; e !== undefined && chain.length < 4; e = e instanceof Error ? e.cause : undefined)
    chain.push((e instanceof Error ? e.message : typeof e === 'string' ? e : JSON.stringify(e)).trim());
  const raw = chain.filter((m, i) => m && !chain.slice(0, i).includes(m)).join(': ');
  const f = target.from;
  const caField = f.ca ?? 'temporal.tls.caFile (or TEMPORAL_TLS_SERVER_CA_CERT_PATH)';
  const certField = f.clientCert ?? 'temporal.tls.clientCert';
  let hint: string | undefined;
  if (target.tls) {
    const v = await probeTls(target);
    if (v.kind === 'server-untrusted')
      hint = `the server's certificate is not signed by ${f.ca ? `the CA in ${f.ca}` : 'a CA this machine trusts'} (${v.code}): set ${caField} to the CA that signed it`;
    else if (v.kind === 'server-name')
      hint = `the server's certificate does not carry the name ${target.tls.serverNameOverride ?? target.address.replace(/:\d+$/, '')} (${v.code}): set ${f.serverName ?? 'temporal.tls.serverName (or TEMPORAL_TLS_SERVER_NAME)'} to a name it carries, or fix ${f.address}`;
    else if (v.kind === 'server-expired')
      hint = `the server's certificate has expired or is not valid yet (${v.code}): renew it on the server`;
    else if (v.kind === 'client-cert-required' && !target.tls.clientCertPair)
      hint = `the server requires a client certificate (mTLS, ${v.code}): set temporal.tls.clientCert and temporal.tls.clientKey (or TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH)`;
    else if (v.kind === 'unauthorized') hint = messageHint('UNAUTHENTICATED', target);
    else if (v.kind === 'plain-text')
      hint = `TLS is on (${f.tls}) but the server answers in plain text: turn TLS off or check ${f.address}`;
    else if (v.kind === 'client-cert-required' || v.kind === 'client-cert-refused')
      hint = `the server refused the client certificate in ${certField} (${v.code}): it must be current and signed by the CA the server trusts for clients`;
  }
  const message = (h: string) => `cannot connect to Temporal at ${target.address} (${f.address}): ${h} [${raw}]`;
  if (hint) return new Error(message(hint), { cause: err });
  hint = messageHint(raw, target);
  return hint === unreachableHint(target) && UNREACHABLE.test(raw)
    ? new TemporalUnreachableError(message(hint), { cause: err })
    : new Error(message(hint), { cause: err });
}

function messageHint(raw: string, target: TemporalTarget): string {
  const f = target.from;
  if (/UNAUTHENTICATED|PERMISSION_DENIED|Request unauthorized|\b40[13]\b/i.test(raw))
    return target.apiKey
      ? `the server refused the API key from ${f.apiKey}: check it is current and may use namespace ${target.namespace}`
      : 'the server wants credentials: set temporal.apiKey (or TEMPORAL_API_KEY), or a client certificate';
  if (/Namespace .* (is )?not found|NOT_FOUND|NotFound/i.test(raw))
    return `namespace ${target.namespace} does not exist there: check ${f.namespace}`;
  if (/wrong version number|WRONG_VERSION|InvalidContentType|packet length/i.test(raw) && target.tls)
    return `TLS is on (${f.tls}) but the server answers in plain text: turn it off or check ${f.address}`;
  if (!target.tls && /Protocol error|http2|frame|EPROTO|INTERNAL|ECONNRESET/i.test(raw))
    return 'the server may want TLS: set temporal.tls: true (or TEMPORAL_TLS=true) and its CA';
  return unreachableHint(target);
}

const unreachableHint = (target: TemporalTarget) =>
  `is the server up, and is the address right?${target.tls ? '' : ' If it wants TLS, set temporal.tls (or TEMPORAL_TLS=true).'}`;
