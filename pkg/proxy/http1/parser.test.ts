// The framing parser: every message's bytes come back unchanged and in order, whatever the
// chunk boundaries, and each framing (length, chunked, none, until close, 1xx, 101) ends where
// it should.
import t from 'tap';
import { Http1Parser, HttpParseError, type HeadInfo } from './parser.js';

interface Msg {
  head: HeadInfo;
  bytes: string;
  ended: boolean;
}

function run(kind: 'request' | 'response', input: string, split: number[], methods: string[] = []): { msgs: Msg[]; rest: string } {
  const msgs: Msg[] = [];
  const p = new Http1Parser(kind, {
    onHead: (head, raw) => msgs.push({ head, bytes: raw.toString('latin1'), ended: false }),
    onBody: (raw) => (msgs[msgs.length - 1]!.bytes += raw.toString('latin1')),
    onMessageEnd: () => (msgs[msgs.length - 1]!.ended = true),
  });
  p.requestMethod = () => methods[msgs.filter((x) => x.ended && !(x.head.status >= 100 && x.head.status < 200)).length] ?? 'GET';
  const buf = Buffer.from(input, 'latin1');
  let rest = '';
  let at = 0;
  for (const cut of [...split, buf.length]) {
    if (cut <= at) continue;
    const piece = buf.subarray(at, cut);
    const used = p.execute(piece);
    at = cut;
    if (used < piece.length || p.upgraded || p.awaitingUpgrade) {
      rest = piece.subarray(used).toString('latin1') + buf.subarray(at).toString('latin1');
      break;
    }
  }
  return { msgs, rest };
}

const splits = (n: number): number[][] => [[], Array.from({ length: n }, (_, i) => i + 1), [Math.floor(n / 3), Math.floor((2 * n) / 3)]];

t.test('requests: length, chunked with extensions and trailers, no body; pipelined', async (t) => {
  const r1 = 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello';
  const r2 = 'PUT /b?q=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n';
  const r3 = 'GET /c HTTP/1.0\r\n\r\n';
  const input = r1 + r2 + r3;
  for (const split of splits(input.length)) {
    const { msgs } = run('request', input, split);
    t.same(
      msgs.map((m) => [m.head.method, m.head.path, m.bytes, m.ended, m.head.close]),
      [
        ['POST', '/a', r1, true, false],
        ['PUT', '/b?q=1', r2, true, false],
        ['GET', '/c', r3, true, true],
      ],
      `split into ${split.length + 1} pieces`,
    );
  }
});

t.test('responses: HEAD, 204, 304, 100-continue then 200, until-close body', async (t) => {
  const a = 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n';
  const b = 'HTTP/1.1 204 No Content\r\n\r\n';
  const c = 'HTTP/1.1 100 Continue\r\n\r\n';
  const d = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n';
  const e = 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end';
  const input = a + b + c + d + e;
  for (const split of splits(input.length)) {
    const { msgs } = run('response', input, split, ['HEAD', 'GET', 'POST', 'GET']);
    t.same(
      msgs.map((m) => [m.head.status, m.bytes, m.ended]),
      [
        [200, a, true],
        [204, b, true],
        [100, c, true],
        [200, d, true],
        [200, e, false],
      ],
      `split into ${split.length + 1} pieces`,
    );
  }
});

t.test('an upgrade request pauses the parser; a 101 hands the rest back untouched', async (t) => {
  const req = 'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
  const { msgs, rest } = run('request', req + '\x00\x01binary', []);
  t.equal(msgs[0]?.head.upgrade, true);
  t.equal(msgs[0]?.ended, true);
  t.equal(rest, '\x00\x01binary');
  const res = run('response', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframes', []);
  t.equal(res.msgs[0]?.head.status, 101);
  t.equal(res.rest, 'frames');
});

t.test('halt(): nothing after the halting message is handed on', async (t) => {
  const seen: string[] = [];
  const p: Http1Parser = new Http1Parser('request', {
    onHead: (h) => seen.push(h.path),
    onBody: () => {},
    onMessageEnd: () => p.halt(),
  });
  const input = Buffer.from('GET /1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n');
  const used = p.execute(input);
  t.same(seen, ['/1']);
  t.equal(used, input.indexOf('GET /smuggled'), 'stops right after the first message');
  t.equal(p.execute(Buffer.from('GET /again HTTP/1.1\r\nHost: x\r\n\r\n')), 0);
  t.same(seen, ['/1']);
  t.doesNotThrow(() => p.finish());
});

/** The first error's reason and whether it was in a head, or 'ok'; the same whether the
 * input arrives whole or one byte at a time. */
function outcome(kind: 'request' | 'response', input: string): string {
  const verdicts = [[], Array.from({ length: input.length }, (_, i) => i + 1)].map((split) => {
    try {
      run(kind, input, split);
      return 'ok';
    } catch (e) {
      if (!(e instanceof HttpParseError)) throw e;
      return `${e.reason}${e.inHead ? '' : ' (body)'}`;
    }
  });
  return verdicts[0] === verdicts[1] ? verdicts[0]! : `whole: ${verdicts[0]}, bytewise: ${verdicts[1]}`;
}

const H = 'Host: x\r\n';
// Each line: what is sent, the parser's verdict. The rejected ones are the shapes where two
// HTTP/1 parsers have been seen to frame a message differently (RFC 9112 §6.3, llhttp strict).
const REQUESTS: [string, string][] = [
  // request line
  ['GET  / HTTP/1.1\r\n' + H + '\r\n', 'bad_request_line'],
  ['GET / HTTP/1.1 \r\n' + H + '\r\n', 'bad_request_line'],
  ['GET /a b HTTP/1.1\r\n' + H + '\r\n', 'bad_request_line'],
  ['GET /\r\n' + H + '\r\n', 'bad_request_line'],
  ['G(T / HTTP/1.1\r\n' + H + '\r\n', 'bad_method'],
  ['GET / HTTP/2.0\r\n' + H + '\r\n', 'bad_version'],
  ['GET / HTTP/1.10\r\n' + H + '\r\n', 'bad_version'],
  ['GET / http/1.1\r\n' + H + '\r\n', 'bad_version'],
  ['GET /a\x00b HTTP/1.1\r\n' + H + '\r\n', 'bad_target'],
  ['GET /a\x7fb HTTP/1.1\r\n' + H + '\r\n', 'bad_target'],
  ['GET a/b HTTP/1.1\r\n' + H + '\r\n', 'bad_target'],
  ['GET * HTTP/1.1\r\n' + H + '\r\n', 'bad_target'],
  ['CONNECT /x HTTP/1.1\r\n' + H + '\r\n', 'bad_target'],
  ['GET http://h/a#f HTTP/1.1\r\n' + H + '\r\n', 'ok'],
  ['GET http://h#f HTTP/1.1\r\n' + H + '\r\n', 'bad_target'],
  ['OPTIONS * HTTP/1.1\r\n' + H + '\r\n', 'ok'],
  ['CONNECT h:443 HTTP/1.1\r\n' + H + '\r\n', 'ok'],
  ['GET /ü HTTP/1.1\r\n' + H + '\r\n', 'ok'],
  // line ends
  ['GET / HTTP/1.1\n' + H + '\r\n', 'bare_lf'],
  ['GET / HTTP/1.1\r\nHost: x\n\r\n', 'bare_lf'],
  ['GET / HTTP/1.1\r\nHost: x\r\n\n', 'bare_lf'],
  ['GET / HTTP/1.1\r\nHost: x\r\rX: y\r\n\r\n', 'bare_cr'],
  ['GET / HTTP/1.1\r\nX: a\rb\r\n' + H + '\r\n', 'bare_cr'],
  ['\r\n\r\nGET / HTTP/1.1\r\n' + H + '\r\n', 'ok'],
  // field lines
  ['GET / HTTP/1.1\r\n' + H + 'Junk\r\n\r\n', 'header_without_colon'],
  ['GET / HTTP/1.1\r\n' + H + 'Transfer-Encoding : chunked\r\n\r\n', 'space_before_colon'],
  ['GET / HTTP/1.1\r\n' + H + 'X\t: y\r\n\r\n', 'space_before_colon'],
  ['GET / HTTP/1.1\r\n' + H + ': y\r\n\r\n', 'bad_header_name'],
  ['GET / HTTP/1.1\r\n' + H + 'X(y: z\r\n\r\n', 'bad_header_name'],
  ['GET / HTTP/1.1\r\n' + H + 'X\x00: z\r\n\r\n', 'bad_header_name'],
  ['GET / HTTP/1.1\r\n' + H + 'X: a\r\n b\r\n\r\n', 'obs_fold'],
  ['GET / HTTP/1.1\r\n\tX: a\r\n' + H + '\r\n', 'obs_fold'],
  ['GET / HTTP/1.1\r\n' + H + 'X: a\x00b\r\n\r\n', 'bad_header_value'],
  ['GET / HTTP/1.1\r\n' + H + 'X: a\x01b\r\n\r\n', 'bad_header_value'],
  ['GET / HTTP/1.1\r\n' + H + 'X: a\x7fb\r\n\r\n', 'bad_header_value'],
  ['GET / HTTP/1.1\r\n' + H + 'X: a\tb é\r\nEmpty:\r\n\r\n', 'ok'],
  // Host
  ['GET / HTTP/1.1\r\n\r\n', 'missing_host'],
  ['GET / HTTP/1.0\r\n\r\n', 'ok'],
  ['GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'duplicate_host'],
  ['GET / HTTP/1.1\r\nHost: a/b\r\n\r\n', 'bad_host'],
  ['GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 'bad_host'],
  ['GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n', 'ok'],
  // Content-Length
  ['POST / HTTP/1.1\r\n' + H + 'Content-Length: 1\r\nContent-Length: 2\r\n\r\nab', 'duplicate_content_length'],
  ['POST / HTTP/1.1\r\n' + H + 'Content-Length: 1\r\nContent-Length: 1\r\n\r\na', 'duplicate_content_length'],
  ['POST / HTTP/1.1\r\n' + H + 'Content-Length: 1, 1\r\n\r\na', 'bad_content_length'],
  ['POST / HTTP/1.1\r\n' + H + 'Content-Length: +1\r\n\r\na', 'bad_content_length'],
  ['POST / HTTP/1.1\r\n' + H + 'Content-Length: -1\r\n\r\n', 'bad_content_length'],
  ['POST / HTTP/1.1\r\n' + H + 'Content-Length: 0x10\r\n\r\n', 'bad_content_length'],
  ['POST / HTTP/1.1\r\n' + H + 'Content-Length: 1 0\r\n\r\n', 'bad_content_length'],
  ['POST / HTTP/1.1\r\n' + H + 'Content-Length:\r\n\r\n', 'bad_content_length'],
  ['POST / HTTP/1.1\r\n' + H + 'Content-Length: 99999999999999999999\r\n\r\n', 'bad_content_length'],
  ['POST / HTTP/1.1\r\n' + H + 'Content-Length: 005\r\n\r\nhello', 'ok'],
  // Transfer-Encoding
  ['POST / HTTP/1.1\r\n' + H + 'Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'te_and_content_length'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n', 'te_and_content_length'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: gzip\r\n\r\n', 'bad_transfer_encoding'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked, identity\r\n\r\n', 'bad_transfer_encoding'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: xchunked\r\n\r\n', 'bad_transfer_encoding'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked, chunked\r\n\r\n', 'bad_transfer_encoding'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked,\r\n\r\n', 'bad_transfer_encoding'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: "chunked"\r\n\r\n', 'bad_transfer_encoding'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 'duplicate_transfer_encoding'],
  ['POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'te_in_http10'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: gzip, Chunked\r\n\r\n0\r\n\r\n', 'ok'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'ok'],
  // chunked framing
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\nzz\r\n', 'bad_chunk_size (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n\r\n', 'bad_chunk_size (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n-1\r\n', 'bad_chunk_size (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n+1\r\n', 'bad_chunk_size (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n1 \r\na\r\n0\r\n\r\n', 'bad_chunk_size (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n', 'bad_chunk_size (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n0x1\r\na\r\n0\r\n\r\n', 'bad_chunk_size (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n', 'chunk_too_large (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n1;a\nb\r\na\r\n0\r\n\r\n', 'bad_chunk_ext (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n1;a\x00\r\na\r\n0\r\n\r\n', 'bad_chunk_ext (body)'],
  ['POST / HTTP/1.1\r\n' + H + `Transfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(5000)}\r\n`, 'chunk_line_too_long (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n1\r\naX\r\n0\r\n\r\n', 'bad_chunk_end (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n1\r\na\n0\r\n\r\n', 'bad_chunk_end (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n1\r\na\r\r\n0\r\n\r\n', 'bad_chunk_end (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n', 'bad_trailer (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n0\r\nX : y\r\n\r\n', 'bad_trailer (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n z\r\n\r\n', 'obs_fold (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n', 'bare_lf (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n\n', 'bare_lf (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n\rZ', 'bare_cr (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n0\r\nX: \x01\r\n\r\n', 'bad_trailer (body)'],
  ['POST / HTTP/1.1\r\n' + H + 'Transfer-Encoding: chunked\r\n\r\n1;name=value;q="a b"\r\na\r\n0\r\nX: y\r\nZ: \r\n\r\n', 'ok'],
  // size
  [`GET / HTTP/1.1\r\n${H}X: ${'a'.repeat(70_000)}\r\n\r\n`, 'head_too_large'],
];

const RESPONSES: [string, string][] = [
  ['HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n', 'ok'],
  ['HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n', 'ok'],
  ['HTTP/1.1 abc\r\n\r\n', 'bad_status'],
  ['HTTP/1.1 20\r\n\r\n', 'bad_status'],
  ['HTTP/1.1 2000 OK\r\n\r\n', 'bad_status_line'],
  ['HTTP/1.1 099 X\r\n\r\n', 'bad_status'],
  ['HTTP/1.1 600 X\r\n\r\n', 'bad_status'],
  ['HTTP/1.1  200 OK\r\n\r\n', 'bad_status'],
  ['HTTP/2 200 OK\r\n\r\n', 'bad_version'],
  ['HTTP/1.1 200 O\x00K\r\n\r\n', 'bad_status_line'],
  ['HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', 'bare_lf'],
  ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'te_and_content_length'],
  ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab', 'duplicate_content_length'],
  ['HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nab', 'bad_content_length'],
  ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nbody', 'bad_transfer_encoding'],
  ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nuntil close', 'ok'],
  ['HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'te_in_http10'],
  ['HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n', 'obs_fold'],
  ['HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n', 'space_before_colon'],
  ['HTTP/1.1 200 OK\r\nno colon\r\n\r\n', 'header_without_colon'],
];

t.test('request framing: every ambiguous shape is rejected, the plain ones pass', async (t) => {
  for (const [input, want] of REQUESTS) t.equal(outcome('request', input), want, JSON.stringify(input.length > 120 ? `${input.slice(0, 117)}...` : input));
});

t.test('response framing: the same strictness where it decides where a response ends', async (t) => {
  for (const [input, want] of RESPONSES) t.equal(outcome('response', input), want, JSON.stringify(input));
});

t.test('what policy sees as the path: the path of absolute-form, not the scheme and host', async (t) => {
  const path = (target: string, method = 'GET'): string => run('request', `${method} ${target} HTTP/1.1\r\nHost: h\r\n\r\n`, []).msgs[0]!.head.path;
  t.equal(path('/admin?x=1'), '/admin?x=1');
  t.equal(path('http://h/admin?x=1'), '/admin?x=1');
  t.equal(path('HTTPS://h:8443/admin'), '/admin');
  t.equal(path('http://h'), '/');
  t.equal(path('http://h?q'), '/?q');
  t.equal(path('*', 'OPTIONS'), '*');
  t.equal(path('h:443', 'CONNECT'), 'h:443');
});

t.test('a request head error carries the method when the request line was read', async (t) => {
  const caught = (input: string): unknown => {
    try {
      run('request', input, []);
    } catch (e) {
      return e;
    }
    return null;
  };
  t.match(caught('POST / HTTP/1.1\r\nHost: x\r\nX : y\r\n\r\n'), { reason: 'space_before_colon', inHead: true, method: 'POST' });
  t.match(caught('G(T / HTTP/1.1\r\n\r\n'), { reason: 'bad_method', inHead: true, method: '' });
});
