// Responses the proxy writes itself, in the order the client expects them among forwarded
// ones: a policy deny (403), a request it refused to frame (400), a response it refused to
// forward (502). Bodies are fixed text: never the policy name, never the parse reason.
const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 502: 'Bad Gateway' };
const BODY: Record<number, string> = { 400: '', 403: 'RBAC: access denied', 502: 'upstream sent an invalid HTTP/1 response' };

export type LocalStatus = 400 | 403 | 502;

export function localResponse(status: LocalStatus, method: string, close: boolean): Buffer {
  const body = BODY[status] ?? '';
  const type = body ? 'content-type: text/plain\r\n' : '';
  return Buffer.from(`HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\n${type}content-length: ${body.length}\r\n${close ? 'connection: close\r\n' : ''}\r\n${method === 'HEAD' ? '' : body}`, 'latin1');
}

const CLOSE_TAIL = 'connection: close\r\n\r\n';

/** The same response head saying `connection: close` instead of whatever it said about the
 * connection (`Connection` and `Keep-Alive` are hop-by-hop: this hop is ending). `raw` is a
 * head the parser accepted: CRLF line ends, no folding. */
export function withConnectionClose(raw: Buffer): Buffer {
  const lines = raw.toString('latin1').split('\r\n');
  const kept = lines.slice(0, -2).filter((l, i) => i === 0 || !/^(connection|keep-alive):/i.test(l));
  return Buffer.from(`${kept.join('\r\n')}\r\n${CLOSE_TAIL}`, 'latin1');
}
