// The framing parser: every message's bytes come back unchanged and in order, whatever the
// chunk boundaries, and each framing (length, chunked, none, until close, 1xx, 101) ends where
// it should.
import t from 'tap';
import { Http1Parser, type HeadInfo } from './parser.js';

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
  const r2 = 'PUT /b?q=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n';
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
  const req = 'GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
  const { msgs, rest } = run('request', req + '\x00\x01binary', []);
  t.equal(msgs[0]?.head.upgrade, true);
  t.equal(msgs[0]?.ended, true);
  t.equal(rest, '\x00\x01binary');
  const res = run('response', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nframes', []);
  t.equal(res.msgs[0]?.head.status, 101);
  t.equal(res.rest, 'frames');
});

t.test('malformed framing is an error, not a guess', async (t) => {
  const bad = (kind: 'request' | 'response', s: string) => () => run(kind, s, []);
  t.throws(bad('request', 'GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'), { message: 'conflicting_content_length' });
  t.throws(bad('request', 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n'), { message: 'bad_transfer_encoding' });
  t.throws(bad('request', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), { message: 'bad_chunk_size' });
  t.throws(bad('response', 'HTTP/1.1 abc\r\n\r\n'), { message: 'bad_status' });
  t.throws(bad('request', `GET / HTTP/1.1\r\nX: ${'a'.repeat(70_000)}\r\n\r\n`), { message: 'head_too_large' });
});
