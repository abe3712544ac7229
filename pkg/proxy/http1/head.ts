// Strict parsing of one HTTP/1.x message head (start line + field lines, CRLF CRLF included),
// as RFC 9112 and llhttp's strict mode read it. The proxy forwards heads unchanged, so any head
// that another parser could frame differently (the upstream for requests, the client for
// responses) is rejected rather than interpreted: that disagreement is what request smuggling
// and per-request policy bypass are made of.
//
// Rejected (reason codes in HttpParseError): a start line with extra or missing spaces, a
// method or field name that is not a token, control characters (NUL included) anywhere but
// HTAB in values, a field line without a colon or with whitespace before it, obs-fold, a
// Content-Length that is not 1*DIGIT or appears twice, a Transfer-Encoding that is repeated,
// lists an unknown element shape, puts `chunked` anywhere but last, or comes with
// Content-Length or in HTTP/1.0; requests also: a final coding other than chunked, a target
// that is not origin-, absolute-, authority- (CONNECT only) or asterisk-form (OPTIONS only),
// no Host (HTTP/1.1) or two Host fields. Bare CR and LF never reach this function: the
// parser's line scanner rejects them while looking for the end of the head.

export class HttpParseError extends Error {
  constructor(
    readonly reason: string,
    /** The error is in a message head: none of that message's bytes have been forwarded. */
    readonly inHead = false,
    /** The request method, when the request line was read before the error. */
    readonly method = '',
  ) {
    super(reason);
  }
}

export interface HeadInfo {
  /** Request method (requests) or '' (responses). */
  method: string;
  /** What policy matches: the path (and query) of an origin- or absolute-form target, the
   * authority of CONNECT, `*` for asterisk-form; '' for responses. */
  path: string;
  /** Status code (responses, 100-599) or 0. */
  status: number;
  /** HTTP/1.0 without keep-alive, or `Connection: close`. */
  close: boolean;
  /** The request asks to switch protocols (Upgrade + Connection: upgrade) or is CONNECT. */
  upgrade: boolean;
}

export interface ParsedHead extends HeadInfo {
  /** Content-Length, or -1 when absent. */
  contentLength: number;
  /** A Transfer-Encoding field was present. */
  hasTe: boolean;
  /** Its final coding is chunked. */
  chunked: boolean;
}

const SP = 32;
const HTAB = 9;

function table(pred: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = pred(c) ? 1 : 0;
  return t;
}
const isAlnum = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
/** tchar (RFC 9110 §5.6.2). */
const TCHAR = table((c) => isAlnum(c) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c)));
/** field-value octets: VCHAR, obs-text, SP, HTAB. */
const VALUE = table((c) => c === HTAB || (c >= SP && c !== 127));
/** request-target octets: VCHAR and obs-text (no SP, no CTL). */
const TARGET = table((c) => c > SP && c !== 127);
/** Host: reg-name, IP-literal and port characters (RFC 3986), nothing that ends an authority. */
const HOST = table((c) => isAlnum(c) || "-._~!$&'()*+,;=:[]%".includes(String.fromCharCode(c)));

/** Any control character but HTAB; CR and LF only ever appear as line ends here. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CTL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

const isToken = (s: string): boolean => {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (TCHAR[s.charCodeAt(i)] === 0) return false;
  return true;
};

const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/** The path policy sees for a request target; throws for a target form the method cannot use. */
function policyPath(method: string, target: string): string {
  if (method === 'CONNECT') {
    // authority-form: host:port, nothing else
    if (/^[^/?#@\s]+:\d+$/.test(target)) return target;
    throw new HttpParseError('bad_target', true, method);
  }
  if (target.charCodeAt(0) === 47 /* / */) return target;
  if (target === '*') {
    if (method === 'OPTIONS') return target;
    throw new HttpParseError('bad_target', true, method);
  }
  const abs = ABSOLUTE_FORM.exec(target);
  if (abs) {
    // Policy matches paths: `GET http://host/admin` must be decided as `/admin`.
    const rest = target.slice(abs[0].length);
    if (rest.startsWith('#')) throw new HttpParseError('bad_target', true, method);
    return rest.startsWith('/') ? rest : `/${rest}`;
  }
  throw new HttpParseError('bad_target', true, method);
}

function parseVersion(text: string, at: number, method: string): number {
  // HTTP-version = "HTTP/" DIGIT "." DIGIT; only major 1 is HTTP/1.
  if (text.charCodeAt(at) !== 72 || text.slice(at, at + 7) !== 'HTTP/1.' || !(text.charCodeAt(at + 7) >= 48 && text.charCodeAt(at + 7) <= 57)) throw new HttpParseError('bad_version', true, method);
  return text.charCodeAt(at + 7) - 48;
}

/** Transfer-Encoding value → whether the final coding is chunked; throws for any other shape
 * that a peer could read differently (`xchunked`, `chunked, identity`, `chunked, chunked`). */
function parseTransferEncoding(value: string, method: string): boolean {
  const codings = value.split(',').map((s) => s.trim().toLowerCase());
  for (let i = 0; i < codings.length; i++) {
    const c = codings[i]!;
    if (!isToken(c)) throw new HttpParseError('bad_transfer_encoding', true, method);
    if (c === 'chunked' && i !== codings.length - 1) throw new HttpParseError('bad_transfer_encoding', true, method);
  }
  return codings[codings.length - 1] === 'chunked';
}

/** Parse a complete head (`raw` ends with CRLF CRLF, holds no bare CR or LF). */
export function parseHead(kind: 'request' | 'response', raw: Buffer): ParsedHead {
  const text = raw.toString('latin1');
  // One native scan; the per-octet checks below only run to name what is wrong.
  const clean = !CTL.test(text);
  const head: ParsedHead = { method: '', path: '', status: 0, close: false, upgrade: false, contentLength: -1, hasTe: false, chunked: false };
  let lineEnd = text.indexOf('\r\n');
  let minor: number;
  if (kind === 'request') {
    // request-line = method SP request-target SP HTTP-version, single spaces.
    const sp1 = text.indexOf(' ');
    if (sp1 <= 0 || sp1 > lineEnd) throw new HttpParseError('bad_request_line', true);
    const method = text.slice(0, sp1);
    if (!isToken(method)) throw new HttpParseError('bad_method', true);
    const sp2 = text.indexOf(' ', sp1 + 1);
    if (sp2 < 0 || sp2 > lineEnd || sp2 === sp1 + 1) throw new HttpParseError('bad_request_line', true, method);
    const target = text.slice(sp1 + 1, sp2);
    if (!clean) for (let i = 0; i < target.length; i++) if (TARGET[target.charCodeAt(i)] === 0) throw new HttpParseError('bad_target', true, method);
    const sp3 = text.indexOf(' ', sp2 + 1);
    if (sp3 >= 0 && sp3 < lineEnd) throw new HttpParseError('bad_request_line', true, method);
    if (lineEnd !== sp2 + 9) throw new HttpParseError('bad_version', true, method);
    minor = parseVersion(text, sp2 + 1, method);
    head.method = method;
    head.path = policyPath(method, target);
  } else {
    // status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ]; a missing reason's SP is tolerated.
    minor = parseVersion(text, 0, '');
    if (text.charCodeAt(8) !== SP) throw new HttpParseError('bad_status_line', true);
    let status = 0;
    for (let i = 9; i < 12; i++) {
      const d = text.charCodeAt(i) - 48;
      if (!(d >= 0 && d <= 9)) throw new HttpParseError('bad_status', true);
      status = status * 10 + d;
    }
    if (status < 100 || status > 599) throw new HttpParseError('bad_status', true);
    if (lineEnd !== 12 && text.charCodeAt(12) !== SP) throw new HttpParseError('bad_status_line', true);
    if (!clean) for (let i = 13; i < lineEnd; i++) if (VALUE[text.charCodeAt(i)] === 0) throw new HttpParseError('bad_status_line', true);
    head.status = status;
  }
  const method = head.method;
  const bad = (reason: string): HttpParseError => new HttpParseError(reason, true, method);

  let keepAlive = false;
  let connUpgrade = false;
  let hasUpgrade = false;
  let hosts = 0;
  // Field lines until the empty line that ends the head.
  for (;;) {
    const start = lineEnd + 2;
    lineEnd = text.indexOf('\r\n', start);
    if (lineEnd === start) break;
    const first = text.charCodeAt(start);
    if (first === SP || first === HTAB) throw bad('obs_fold');
    let colon = start;
    while (colon < lineEnd && TCHAR[text.charCodeAt(colon)] === 1) colon++;
    const c = text.charCodeAt(colon);
    if (c !== 58 /* : */) {
      const hasColon = text.indexOf(':', colon) >= 0 && text.indexOf(':', colon) < lineEnd;
      throw bad(!hasColon ? 'header_without_colon' : c === SP || c === HTAB ? 'space_before_colon' : 'bad_header_name');
    }
    if (colon === start) throw bad('bad_header_name');
    if (!clean) for (let i = colon + 1; i < lineEnd; i++) if (VALUE[text.charCodeAt(i)] === 0) throw bad('bad_header_value');
    const nameLen = colon - start;
    // Only the few fields that change framing or routing are interpreted.
    if (nameLen !== 14 && nameLen !== 17 && nameLen !== 10 && nameLen !== 7 && nameLen !== 4) continue;
    const name = text.slice(start, colon).toLowerCase();
    const value = text.slice(colon + 1, lineEnd).trim();
    if (name === 'content-length') {
      if (head.contentLength >= 0) throw bad('duplicate_content_length');
      if (!/^\d{1,15}$/.test(value)) throw bad('bad_content_length');
      head.contentLength = Number(value);
    } else if (name === 'transfer-encoding') {
      if (head.hasTe) throw bad('duplicate_transfer_encoding');
      head.hasTe = true;
      head.chunked = parseTransferEncoding(value, method);
    } else if (name === 'connection') {
      for (const tok of value.toLowerCase().split(',')) {
        const t = tok.trim();
        if (t === 'close') head.close = true;
        else if (t === 'keep-alive') keepAlive = true;
        else if (t === 'upgrade') connUpgrade = true;
      }
    } else if (name === 'upgrade') hasUpgrade = true;
    else if (name === 'host') {
      hosts++;
      for (let i = 0; i < value.length; i++) if (HOST[value.charCodeAt(i)] === 0) throw bad('bad_host');
    }
  }
  if (minor === 0 && !keepAlive) head.close = true;
  // RFC 9112 §6.1/§6.3: both framings at once, or chunked in HTTP/1.0, is faulty framing.
  if (head.hasTe && head.contentLength >= 0) throw bad('te_and_content_length');
  if (head.hasTe && minor === 0) throw bad('te_in_http10');
  if (kind === 'request') {
    if (head.hasTe && !head.chunked) throw bad('bad_transfer_encoding');
    if (hosts > 1) throw bad('duplicate_host');
    if (hosts === 0 && minor >= 1) throw bad('missing_host');
    head.upgrade = (hasUpgrade && connUpgrade) || method === 'CONNECT';
  }
  return head;
}
