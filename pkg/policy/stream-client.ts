// The HTTP(S) client of the controller stream: one GET whose response body (NDJSON) the
// caller reads as a node stream it can destroy on a read deadline. Over node:net / node:tls
// rather than node:http/https or fetch: this is the only HTTP client a proxy needs, and
// node:http alone costs every sidecar ~14 MiB of RSS. The CA is an ordinary `ca` option
// (trusting exactly that bundle, not the system store), with the usual hostname check.
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';

/** Returns the PEM bundle to trust, read fresh at each connect (rotation). */
export type CaLoader = () => Promise<string | undefined>;

/** The response: its status, and its body (de-chunked) as a stream. */
export type StreamResponse = PassThrough & { statusCode: number };

const MAX_HEAD = 16 * 1024;

/** The chunked transfer coding, undone incrementally: `push` takes what the socket gave and
 * writes the body bytes it frames; whatever is incomplete waits for the next call. */
class Dechunker {
  private buf: Buffer = Buffer.alloc(0);
  private state: 'size' | 'data' | 'crlf' | 'done' = 'size';
  private left = 0;
  constructor(private readonly out: PassThrough) {}
  get done(): boolean {
    return this.state === 'done';
  }
  push(b: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, b]) : b;
    for (;;) {
      if (this.state === 'data') {
        if (this.buf.length === 0) return;
        const n = Math.min(this.left, this.buf.length);
        this.out.write(this.buf.subarray(0, n));
        this.buf = this.buf.subarray(n);
        this.left -= n;
        if (this.left === 0) this.state = 'crlf';
      } else if (this.state === 'crlf') {
        if (this.buf.length < 2) return;
        this.buf = this.buf.subarray(2);
        this.state = 'size';
      } else if (this.state === 'size') {
        const eol = this.buf.indexOf('\r\n');
        if (eol < 0) {
          if (this.buf.length > 1024) throw new Error('the controller sent a malformed chunk size');
          return;
        }
        const size = Number.parseInt(this.buf.toString('latin1', 0, eol).split(';')[0]!.trim(), 16);
        if (!Number.isSafeInteger(size) || size < 0) throw new Error('the controller sent a malformed chunk size');
        this.buf = this.buf.subarray(eol + 2);
        if (size === 0) this.state = 'done';
        else {
          this.left = size;
          this.state = 'data';
        }
      } else return;
    }
  }
}

export function openStream(url: URL, headers: Record<string, string>, signal: AbortSignal, ca?: string): Promise<StreamResponse> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || (secure ? 443 : 80));
    const sock: Socket = secure ? tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...(ca !== undefined ? { ca } : {}) }) : netConnect({ host, port });
    const body = new PassThrough() as StreamResponse;
    // A stream torn down (abort, read deadline) reaches the reader through its iterator; no
    // reader yet must not make it an uncaught 'error'.
    body.on('error', () => {});
    let head: Buffer | null = Buffer.alloc(0);
    let chunked: Dechunker | null = null;
    let settled = false;
    const fail = (e: Error): void => {
      if (!settled) {
        settled = true;
        reject(e);
      } else body.destroy(e);
      sock.destroy();
    };
    const onAbort = (): void => fail(Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ABORT_ERR' }));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    body.on('close', () => {
      signal.removeEventListener('abort', onAbort);
      sock.destroy();
    });
    sock.on('error', fail);
    sock.once(secure ? 'secureConnect' : 'connect', () => {
      const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), 'connection: close', '', ''];
      sock.write(lines.join('\r\n'), 'latin1');
    });
    sock.on('data', (chunk: Buffer) => {
      let b: Buffer = chunk;
      try {
        if (head !== null) {
          head = Buffer.concat([head, b]) as Buffer;
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) {
            if (head.length > MAX_HEAD) fail(new Error('the controller sent an oversized response head'));
            return;
          }
          const text = head.toString('latin1', 0, end);
          const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
          if (!m) return fail(new Error('the controller sent a malformed status line'));
          body.statusCode = Number(m[1]);
          if (/^transfer-encoding:\s*chunked\s*$/im.test(text)) chunked = new Dechunker(body);
          b = head.subarray(end + 4);
          head = null;
          settled = true;
          resolve(body);
        }
        if (chunked) {
          chunked.push(b);
          if (chunked.done) body.end();
        } else if (b.length) body.write(b);
      } catch (e) {
        fail(e as Error);
      }
    });
    sock.on('end', () => {
      if (!settled) fail(new Error('the controller closed the connection before answering'));
      else body.end();
    });
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
