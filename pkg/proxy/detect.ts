// Protocol detection from the first bytes a client sends. Only HTTP/1.x is recognised (a
// known method token and a space); everything else, HTTP/2 prior knowledge and TLS included,
// is relayed as opaque TCP.
/** The request-line starts that mean HTTP/1.x: a method token and a space. The native path's
 * detector (addon/src/conn.cc) is given this same table. */
export const HTTP_METHOD_TOKENS: readonly string[] = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'PURGE', 'SEARCH'].map((m) => `${m} `);
const METHODS = HTTP_METHOD_TOKENS.map((m) => Buffer.from(m, 'latin1'));
const LONGEST = Math.max(...METHODS.map((m) => m.length));

export type FirstBytes = 'http' | 'opaque' | 'more';

/** 'more': what arrived is a prefix of an HTTP method; wait for more (within the timeout). */
export function classifyFirstBytes(buf: Buffer): FirstBytes {
  let prefix = false;
  for (const m of METHODS) {
    const n = Math.min(m.length, buf.length);
    if (buf.compare(m, 0, n, 0, n) !== 0) continue;
    if (n === m.length) return 'http';
    prefix = true;
  }
  return prefix && buf.length < LONGEST ? 'more' : 'opaque';
}
