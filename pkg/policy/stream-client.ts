// The HTTP(S) client of the controller stream: node:http/https rather than fetch, so the CA
// is an ordinary `ca` option (trusting exactly that bundle, not the system store) and the
// caller reads the body as a node stream it can destroy on a read deadline.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';

/** Returns the PEM bundle to trust, read fresh at each connect (rotation). */
export type CaLoader = () => Promise<string | undefined>;

export function openStream(url: URL, headers: Record<string, string>, signal: AbortSignal, ca?: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const tls = url.protocol === 'https:';
    // agent: false: one long-lived connection per stream, never a pooled socket whose peer
    // may have gone away while it sat idle.
    const opts: https.RequestOptions = { method: 'GET', headers, signal, agent: false, ...(tls && ca !== undefined ? { ca } : {}) };
    const req = (tls ? https : http).request(url, opts, resolve);
    req.on('error', reject);
    req.end();
  });
}

// OpenSSL's verification failures, as node reports them in err.code.
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

/** A sentence for a TLS failure to the controller, or undefined when it is not one. */
export function tlsHint(err: NodeJS.ErrnoException, host: string, haveCa: boolean): string | undefined {
  const code = err.code ?? '';
  if (UNTRUSTED.has(code)) {
    return haveCa
      ? `the controller's TLS certificate (${host}) is not signed by the --controller-ca CA (${code}); the stream stays down until it is: check that the CA is the one that signed the controller's serving certificate`
      : `the controller's TLS certificate (${host}) is not trusted by the system CAs (${code}): give the CA that signed it with --controller-ca FILE or WEFT_CONTROLLER_CA_PEM`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the controller's TLS certificate does not name ${host} (${code}): --controller must use a name the certificate carries`;
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return `the controller's TLS certificate for ${host} is not valid now (${code})`;
  return undefined;
}
