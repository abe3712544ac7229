// How an HTTP/1 connection ends: a drain tells the client with `connection: close` and closes
// only after that response; a request that never gets a response is still counted (code 0);
// a response nobody asked for (a server's 408 on an idle connection) reaches the client,
// followed by a clean close rather than an RST.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import t, { type Test } from 'tap';
import { DRAIN_IDLE_LINGER_MS } from './session.js';
import { dial, listen, readAll, startTestProxy, type TestProxy } from '../test-support.js';

const H = 'Host: app\r\n';

async function httpUpstream(t: Test, delayMs = 0): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => setTimeout(() => res.end(`done ${req.method} ${req.url}`), delayMs));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return server;
}

async function proxyTo(t: Test, port: number): Promise<TestProxy> {
  const tp = await startTestProxy({ detectTimeoutMs: 2000 });
  t.teardown(() => tp.close());
  tp.dst = { address: '127.0.0.1', port };
  return tp;
}

/** A raw client that closes when the server does, as HTTP clients do. */
async function client(tp: TestProxy): Promise<{ c: Socket; text: () => string; closed: Promise<{ error: string | undefined }>; ended: () => boolean }> {
  const c = await dial(tp.inbound);
  let text = '';
  let ended = false;
  c.on('data', (b: Buffer) => (text += b.toString('latin1')));
  c.on('end', () => {
    ended = true;
    c.end();
  });
  const closed = readAll(c).then((r) => ({ error: r.error }));
  return { c, text: () => text, closed, ended: () => ended };
}

const until = async (what: string, ok: () => boolean, ms = 5000): Promise<void> => {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};
const statuses = (text: string): string[] => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]!);

t.test('drain with a request in flight: its response says connection: close, then the proxy closes', async (t) => {
  const server = await httpUpstream(t, 200);
  const tp = await proxyTo(t, (server.address() as { port: number }).port);
  const k = await client(tp);
  k.c.write(`GET /slow HTTP/1.1\r\n${H}\r\n`);
  await new Promise((r) => setTimeout(r, 50));
  const drained = tp.proxy.drain(5000);
  await k.closed;
  const text = k.text();
  t.same(statuses(text), ['200']);
  t.match(text, /\r\nconnection: close\r\n/i, 'the client is told this is the last response');
  t.notMatch(text, /keep-alive/i, "the upstream's keep-alive is not passed on");
  t.match(text, /done GET \/slow$/, 'and gets it whole');
  t.ok(k.ended(), 'then a FIN');
  t.equal(await drained, 0, 'nothing had to be aborted');
});

t.test('drain of an idle connection: a request already on its way is answered (with close), not met with EOF', async (t) => {
  const server = await httpUpstream(t);
  const tp = await proxyTo(t, (server.address() as { port: number }).port);
  const k = await client(tp);
  k.c.write(`GET /first HTTP/1.1\r\n${H}\r\n`);
  await until('first response', () => k.text().includes('done GET /first'));
  const drained = tp.proxy.drain(5000);
  // The client has not seen anything of the drain and sends its next request: a POST.
  k.c.write(`POST /late HTTP/1.1\r\n${H}Content-Length: 4\r\n\r\nbody`);
  await k.closed;
  t.same(statuses(k.text()), ['200', '200']);
  t.match(k.text(), /connection: close\r\n[^]*done POST \/late$/i, 'the POST got its response, marked as the last');
  t.equal(await drained, 0);
  t.equal(await tp.metric('weft_requests_total', { response_code: '200' }), 2);
});

t.test('drain of an idle connection that stays idle: closed with a FIN after the linger', async (t) => {
  const server = await httpUpstream(t);
  const tp = await proxyTo(t, (server.address() as { port: number }).port);
  const k = await client(tp);
  k.c.write(`GET /only HTTP/1.1\r\n${H}\r\n`);
  await until('response', () => k.text().includes('done GET /only'));
  const t0 = performance.now();
  t.equal(await tp.proxy.drain(10 * DRAIN_IDLE_LINGER_MS), 0, 'closed by the proxy, not aborted at the end of the grace period');
  const r = await k.closed;
  t.equal(r.error, undefined, 'a FIN, not an RST');
  t.ok(k.ended());
  t.ok(performance.now() - t0 < 10 * DRAIN_IDLE_LINGER_MS, 'before the grace period ran out');
});

t.test('a response cut by an upstream RST: the client gets an RST and the request counts as code 0', async (t) => {
  const server = await listen((s) => {
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial');
      setTimeout(() => s.resetAndDestroy(), 50);
    });
  });
  t.teardown(() => server.close());
  const tp = await proxyTo(t, server.port);
  const k = await client(tp);
  k.c.write(`GET /cut HTTP/1.1\r\n${H}\r\n`);
  const r = await k.closed;
  t.equal(r.error, 'ECONNRESET', 'a truncated body is not passed off as complete');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(await tp.metric('weft_requests_total', { method: 'GET', response_code: '0' }), 1);
  t.equal(await tp.metric('weft_requests_total'), 1, 'counted once');
  const hist = await tp.proxy.metrics.registry.getSingleMetric('weft_request_duration_seconds')?.get();
  const count = (hist?.values ?? []).filter((v) => (v as { metricName?: string }).metricName === 'weft_request_duration_seconds_count').reduce((a, v) => a + v.value, 0);
  t.equal(count, 1, 'and timed');
});

t.test('a client that gives up before any response: code 0', async (t) => {
  const server = await listen(() => {}); // never answers
  t.teardown(() => server.close());
  const tp = await proxyTo(t, server.port);
  const k = await client(tp);
  k.c.write(`POST /wait HTTP/1.1\r\n${H}Content-Length: 2\r\n\r\nhi`);
  await new Promise((r) => setTimeout(r, 100));
  k.c.resetAndDestroy();
  await k.closed;
  await until('counted', () => tp.proxy.engine.activeConnections === 0);
  t.equal(await tp.metric('weft_requests_total', { method: 'POST', response_code: '0' }), 1);
});

t.test('pipelined requests the upstream closes on: answered ones keep their code, the rest are 0', async (t) => {
  const server = await listen((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')));
  t.teardown(() => server.close());
  const tp = await proxyTo(t, server.port);
  const k = await client(tp);
  k.c.write(`GET /1 HTTP/1.1\r\n${H}\r\nGET /2 HTTP/1.1\r\n${H}\r\nGET /3 HTTP/1.1\r\n${H}\r\n`);
  await k.closed;
  await until('counted', () => tp.proxy.engine.activeConnections === 0);
  t.same(statuses(k.text()), ['200']);
  t.equal(await tp.metric('weft_requests_total', { response_code: '200' }), 1);
  t.equal(await tp.metric('weft_requests_total', { response_code: '0' }), 2);
});

for (const closes of [true, false]) {
  t.test(`an unsolicited 408 on an idle connection is forwarded, then a clean close (${closes ? 'server closes' : 'server keeps the connection'})`, async (t) => {
    const server = await listen((s) => {
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        setTimeout(() => {
          s.write(`HTTP/1.1 408 Request Timeout\r\ncontent-length: 7\r\n${closes ? 'connection: close\r\n' : ''}\r\ntimeout`);
          if (closes) s.end();
        }, 100);
      });
    });
    t.teardown(() => server.close());
    const tp = await proxyTo(t, server.port);
    const k = await client(tp);
    k.c.write(`GET /x HTTP/1.1\r\n${H}\r\n`);
    const r = await k.closed;
    t.equal(r.error, undefined, 'no RST');
    t.same(statuses(k.text()), ['200', '408'], 'the client saw why the connection ends');
    t.match(k.text(), /408 Request Timeout\r\n[^]*connection: close\r\n\r\ntimeout$/i);
    t.ok(k.ended());
    t.equal(await tp.metric('weft_requests_total'), 1, 'the 408 answers no request: not counted as one');
  });
}
