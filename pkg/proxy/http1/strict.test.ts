// Request smuggling through the proxy: a request whose framing another parser could read
// differently is answered 400 and the connection closed; the upstream never sees what hides
// behind it, and a path policy cannot be walked around with an absolute-form target.
import t, { type Test } from 'tap';
import type { Authorizer } from '../../policy/types.js';
import { dial, listen, readAll, startTestProxy } from '../test-support.js';

/** A raw upstream: records every byte it receives, answers each request head with `ok`. */
async function recordingUpstream(t: Test, answer = true): Promise<{ port: number; received: () => string; ended: () => string }> {
  let received = '';
  let ended = '';
  const server = await listen((s) => {
    s.on('error', (e: NodeJS.ErrnoException) => (ended = e.code ?? 'error'));
    s.on('end', () => (ended ||= 'fin'));
    let pending = '';
    s.on('data', (b: Buffer) => {
      received += b.toString('latin1');
      pending += b.toString('latin1');
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) >= 0) {
        pending = pending.slice(end + 4);
        if (answer) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      }
    });
    s.on('end', () => s.end());
  });
  t.teardown(() => server.close());
  return { port: server.port, received: () => received, ended: () => ended };
}

async function send(t: Test, payload: string, authorizer?: Authorizer) {
  const up = await recordingUpstream(t);
  const tp = await startTestProxy({}, authorizer ? { authorizer } : {});
  t.teardown(() => tp.close());
  tp.dst = { address: '127.0.0.1', port: up.port };
  const c = await dial(tp.inbound);
  const all = readAll(c);
  c.on('end', () => c.end()); // as HTTP clients do when the server closes
  c.write(payload); // no FIN from the client first: the proxy must close by itself
  const r = await all;
  await new Promise((r) => setTimeout(r, 50));
  return { text: r.data.toString('latin1'), error: r.error, upstream: up.received(), tp };
}

const H = 'Host: app\r\n';
const SMUGGLED = 'GET /admin HTTP/1.1\r\nHost: app\r\n\r\n';
const ATTEMPTS: [string, string][] = [
  ['CL.TE (both framings)', `POST / HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['TE.CL (both framings)', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n${SMUGGLED}\r\n0\r\n\r\n`],
  ['space before the colon', `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['folded Transfer-Encoding', `POST / HTTP/1.1\r\n${H}X: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['xchunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['chunked, identity', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['two Content-Lengths', `POST / HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: 37\r\n\r\n${SMUGGLED}`],
  ['header line without a colon', `GET / HTTP/1.1\r\n${H}Transfer-Encoding chunked\r\n\r\n${SMUGGLED}`],
  ['bare LF line ends', `GET / HTTP/1.1\n${H.replace('\r\n', '\n')}\n${SMUGGLED}`],
  ['NUL in a header value', `GET / HTTP/1.1\r\n${H}X: a\x00b\r\n\r\n${SMUGGLED}`],
];

for (const [name, payload] of ATTEMPTS) {
  t.test(`smuggling (${name}): 400 and close, nothing reaches the upstream`, async (t) => {
    const { text, error, upstream, tp } = await send(t, payload);
    t.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/, '400 to the client');
    t.match(text, /\r\nconnection: close\r\n/i);
    t.equal(error, undefined, 'closed with a FIN after the 400, not reset');
    t.equal((text.match(/HTTP\/1\.1 /g) ?? []).length, 1, 'one response only');
    t.equal(upstream, '', 'the upstream received no byte');
    t.equal(await tp.metric('weft_requests_total', { direction: 'inbound', response_code: '400' }), 1, 'counted as a 400');
  });
}

t.test('a bad request behind a good one: the good one is answered first, the rest never goes up', async (t) => {
  const good = `GET /ok HTTP/1.1\r\n${H}\r\n`;
  const { text, upstream, tp } = await send(t, `${good}POST / HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`);
  t.same([...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]), ['200', '400'], 'responses in order');
  t.equal(upstream, good, 'the upstream saw exactly the good request');
  t.equal(await tp.metric('weft_requests_total', { response_code: '200' }), 1);
  t.equal(await tp.metric('weft_requests_total', { response_code: '400' }), 1);
});

t.test('bad chunk framing after the head went up: 400, the upstream connection is reset, the smuggled request never arrives', async (t) => {
  const head = `POST /up HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`;
  const up = await recordingUpstream(t, false); // waits for the whole body before answering
  const tp = await startTestProxy();
  t.teardown(() => tp.close());
  tp.dst = { address: '127.0.0.1', port: up.port };
  const c = await dial(tp.inbound);
  const all = readAll(c);
  c.on('end', () => c.end());
  c.write(head);
  await new Promise((r) => setTimeout(r, 50));
  c.write(`5\nhello\r\n0\r\n\r\n${SMUGGLED}`);
  const text = (await all).data.toString('latin1');
  await new Promise((r) => setTimeout(r, 50));
  t.match(text, /^HTTP\/1\.1 400 /);
  t.notMatch(up.received(), /\/admin/, 'nothing after the bad chunk line went up');
  t.equal(up.ended(), 'ECONNRESET', 'the upstream, left with half a request, is reset');
  t.equal(await tp.metric('weft_requests_total', { method: 'POST', response_code: '400' }), 1);
});

t.test('data after a request that asked to close is not forwarded', async (t) => {
  const first = `GET /last HTTP/1.1\r\n${H}Connection: close\r\n\r\n`;
  const { text, upstream } = await send(t, first + SMUGGLED);
  t.same([...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]), ['200']);
  t.equal(upstream, first, 'the upstream saw only the closing request');
});

t.test('path policy: an absolute-form target is decided by its path', async (t) => {
  const asked: string[] = [];
  const authorizer: Authorizer = {
    decide: (r) => (asked.push(r.http?.path ?? ''), r.http?.path.startsWith('/admin') ? { allow: false, reason: 'deny-policy', policy: 'ns/no-admin' } : { allow: true, reason: 'allow-policy', policy: 'ns/no-admin' }),
    needsHttp: () => true,
  };
  const { text, upstream } = await send(t, `GET http://app/admin HTTP/1.1\r\n${H}\r\nGET HTTP://app:80/admin?x HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, authorizer);
  t.same([...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]), ['403', '403']);
  t.same(asked, ['/admin', '/admin?x']);
  t.equal(upstream, '', 'neither reached the app');
});

t.test('responses: both framings or a 101 nobody asked for are a 502, never forwarded', async (t) => {
  const cases: [string, string][] = [
    ['CL and TE', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['unasked 101', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n'],
    ['status 999', 'HTTP/1.1 999 Nope\r\nContent-Length: 0\r\n\r\n'],
  ];
  for (const [name, response] of cases) {
    const server = await listen((s) => s.once('data', () => s.write(response)));
    const tp = await startTestProxy();
    tp.dst = { address: '127.0.0.1', port: server.port };
    const c = await dial(tp.inbound);
    const all = readAll(c);
    c.on('end', () => c.end());
    c.write(`GET / HTTP/1.1\r\n${H}\r\n`);
    const r = await all;
    t.match(r.data.toString('latin1'), /^HTTP\/1\.1 502 Bad Gateway\r\n[^]*connection: close\r\n\r\n[^]*$/, `${name}: 502`);
    t.notMatch(r.data.toString('latin1'), /Switching|Nope|Transfer-Encoding/, `${name}: nothing of it forwarded`);
    t.equal(await tp.metric('weft_requests_total', { response_code: '502' }), 1, `${name}: counted as 502`);
    await tp.close();
    await server.close();
  }
});
