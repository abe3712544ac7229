// The admin port's small HTTP/1.1 server over real sockets: keep-alive, pipelining, HEAD,
// bodies skipped, and the refusals, with what kubelet and curl would send.
import { connect } from 'node:net';
import t, { type Test } from 'tap';
import { adminHttpServer, type AdminRequest } from './admin-server.js';

async function start(t: Test): Promise<{ port: number; seen: AdminRequest[] }> {
  const seen: AdminRequest[] = [];
  const http = adminHttpServer(async (r) => {
    seen.push(r);
    if (r.url === '/slow') await new Promise((res) => setTimeout(res, 50));
    return { status: r.url === '/missing' ? 404 : 200, contentType: 'text/plain', body: `you asked ${r.method} ${r.url}\n` };
  });
  await new Promise<void>((r) => http.server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => http.close(100));
  return { port: (http.server.address() as { port: number }).port, seen };
}

/** Writes `raw`, reads until the server closes or `ms` pass. */
function exchange(port: number, raw: string, ms = 500): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, ms);
    s.on('data', (b: Buffer) => (got += b.toString()));
    s.on('close', done);
    s.on('error', done);
    s.write(raw);
  });
}

const statuses = (text: string): string[] => [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1]!);

t.test('keep-alive and pipelining: requests on one connection are answered in order', async (t) => {
  const { port } = await start(t);
  const text = await exchange(port, 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /live HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.same(statuses(text), ['200', '200', '404']);
  t.match(text, /you asked GET \/slow[\s\S]*you asked GET \/live[\s\S]*you asked GET \/missing/, 'in request order, although the first was slow');
  t.match(text, /connection: close\r\n\r\nyou asked GET \/missing/, 'the last one, which asked to close, says so');
});

t.test('HEAD gets the headers with the length of the body, and no body', async (t) => {
  const { port } = await start(t);
  const text = await exchange(port, 'HEAD /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.match(text, /^HTTP\/1\.1 200 OK\r\ncontent-type: text\/plain\r\ncontent-length: 22\r\n/);
  t.ok(text.endsWith('\r\n\r\n'), 'nothing after the head');
});

t.test('a POST body is skipped, and the next request on the connection still parses', async (t) => {
  const { port, seen } = await start(t);
  const text = await exchange(port, 'POST /shutdown HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello worldGET /live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.same(statuses(text), ['200', '200']);
  t.same(
    seen.map((r) => `${r.method} ${r.url}`),
    ['POST /shutdown', 'GET /live'],
  );
  t.equal(seen[0]?.remoteAddress, '127.0.0.1', 'the peer address reaches the routes (POST /shutdown checks it)');
});

t.test('bad input is refused with the status that says why, and the connection closed', async (t) => {
  const { port, seen } = await start(t);
  t.same(statuses(await exchange(port, 'GET /x HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n')), ['400']);
  t.same(statuses(await exchange(port, 'GET  /x HTTP/1.1\r\nHost: x\r\n\r\n')), ['400']);
  t.same(statuses(await exchange(port, 'POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')), ['411']);
  t.same(statuses(await exchange(port, 'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n')), ['413']);
  t.same(statuses(await exchange(port, `GET /x HTTP/1.1\r\nHost: x\r\nX-Long: ${'a'.repeat(20_000)}`)), ['431']);
  t.equal(seen.length, 0, 'no route saw any of them');
});
