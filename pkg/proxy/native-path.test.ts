// The native connection path (the addon accepts, detects, connects and relays; JS decides):
// what comes back to JS — HTTP/1 per request, upgrades, per-request policy — and what stays
// native, with the same metrics as the Node path. Loopback only, mode none.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import t, { type Test } from 'tap';
import type { Authorizer } from '../policy/types.js';
import { loadNativeCaps } from './native-bridge.js';
import { deterministicBytes, dial, dialAndRead, listen, readAll, sha256, startTestProxy, type TestProxy } from './test-support.js';

const caps = loadNativeCaps();
if (!caps.pool) {
  t.plan(0, `native connection path unavailable: ${caps.missing}`);
} else {
  const start = async (t: Test, flags: Record<string, unknown> = {}, o: { authorizer?: Authorizer } = {}): Promise<TestProxy> => {
    const tp = await startTestProxy({ relay: 'native', ...flags }, { native: true, ...o });
    t.teardown(() => tp.close());
    t.ok(tp.proxy.engine.nativePath, 'the proxy runs the native connection path');
    return tp;
  };

  const httpServer = async (t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> => {
    const server = createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    t.teardown(() => {
      server.closeAllConnections();
      server.close();
    });
    return (server.address() as { port: number }).port;
  };

  t.test('HTTP/1 comes back to JS: keep-alive and pipelined requests are each counted', async (t) => {
    const port = await httpServer(t, (req, res) => res.end(`you asked ${req.url}`));
    const tp = await start(t);
    tp.dst = { address: '127.0.0.1', port };
    const c = await dial(tp.outbound);
    const all = readAll(c);
    c.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => setTimeout(r, 100));
    c.end('GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const text = (await all).data.toString();
    t.same([...text.matchAll(/you asked (\/\w)/g)].map((m) => m[1]), ['/a', '/b', '/c'], 'three responses in order on one connection');
    t.equal(await tp.metric('weft_requests_total', { direction: 'outbound', method: 'GET', response_code: '200' }), 3, 'each request counted');
    t.equal(await tp.metric('weft_tcp_connections_opened_total', { direction: 'outbound' }), 1, 'one connection');
  });

  t.test('a client that sends its request a byte at a time is still detected as HTTP', async (t) => {
    const port = await httpServer(t, (req, res) => res.end(`ok ${req.method}`));
    const tp = await start(t, { detectTimeoutMs: 2000 });
    tp.dst = { address: '127.0.0.1', port };
    const c = await dial(tp.outbound);
    const all = readAll(c);
    for (const ch of 'OPTIONS / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n') {
      c.write(ch);
      await new Promise((r) => setTimeout(r, 2));
    }
    c.end();
    t.match((await all).data.toString(), /ok OPTIONS/);
    t.equal(await tp.metric('weft_requests_total', { method: 'OPTIONS' }), 1, 'parsed as HTTP, not relayed opaque');
  });

  t.test('an upgrade turns the rest of the stream opaque, byte-exact both ways', async (t) => {
    const payload = deterministicBytes(3 << 20, 5);
    const server = await listen((s) => {
      s.once('data', () => {
        s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-test\r\nConnection: Upgrade\r\n\r\n');
        s.on('data', (b: Buffer) => s.write(b)); // echo everything after the switch
        s.on('end', () => s.end());
      });
    });
    t.teardown(() => server.close());
    const tp = await start(t);
    tp.dst = { address: '127.0.0.1', port: server.port };
    const c = await dial(tp.outbound);
    const all = readAll(c);
    c.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: x-test\r\nConnection: Upgrade\r\n\r\n');
    await new Promise((r) => setTimeout(r, 50));
    c.end(payload);
    const got = (await all).data;
    const sep = got.indexOf('\r\n\r\n') + 4;
    t.match(got.subarray(0, sep).toString(), /^HTTP\/1\.1 101/);
    t.equal(sha256(got.subarray(sep)), sha256(payload), 'the echoed bytes are exact');
  });

  t.test('per-request policy: detection hands the client back, JS connects only for what it allows', async (t) => {
    const seen: string[] = [];
    const port = await httpServer(t, (req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.end('fine');
    });
    const authorizer: Authorizer = {
      decide: (r) => (r.http?.path.startsWith('/admin') ? { allow: false, reason: 'deny-policy', policy: 'shop/p' } : { allow: true, reason: 'allow-policy', policy: 'shop/p' }),
      needsHttp: () => true,
    };
    const tp = await start(t, {}, { authorizer });
    tp.dst = { address: '127.0.0.1', port };
    const c = await dial(tp.inbound);
    const all = readAll(c);
    c.end('GET /admin HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const text = (await all).data.toString();
    t.same([...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]), ['403', '200']);
    t.same(seen, ['GET /ok'], 'the denied request never reached the app');
  });

  t.test('an L4 deny is an RST before the upstream sees a connection', async (t) => {
    const server = await listen((s) => s.end('should not happen'));
    t.teardown(() => server.close());
    const authorizer: Authorizer = { decide: () => ({ allow: false, reason: 'deny-policy', policy: 'shop/deny' }), needsHttp: () => false };
    const tp = await start(t, {}, { authorizer });
    tp.dst = { address: '127.0.0.1', port: server.port };
    const r = await dialAndRead(tp.inbound, 'hello');
    t.equal(r.error, 'ECONNRESET');
    t.equal(r.data.length, 0);
    await new Promise((r) => setTimeout(r, 50));
    t.equal(server.accepted(), 0, 'upstream never connected');
    t.equal(await tp.metric('weft_tcp_connection_failures_total', { reason: 'policy_denied' }), 1);
  });

  t.test('300 short connections at once: each gets its own reply; opened = closed; bytes counted', async (t) => {
    const server = await listen((s) => {
      s.on('data', (b: Buffer) => s.write(b));
      s.on('end', () => s.end());
    });
    t.teardown(() => server.close());
    const tp = await start(t);
    tp.dst = { address: '127.0.0.1', port: server.port };
    const n = 300;
    const ok = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const msg = deterministicBytes(1000, i + 1);
        const c = await dial(tp.outbound);
        const all = readAll(c);
        c.end(msg);
        return (await all).data.equals(msg);
      }),
    );
    t.equal(ok.filter(Boolean).length, n, 'every client got its own bytes back');
    await new Promise((r) => setTimeout(r, 100));
    t.equal(await tp.metric('weft_tcp_connections_opened_total'), n);
    t.equal(await tp.metric('weft_tcp_connections_closed_total'), n);
    t.equal(await tp.metric('weft_tcp_received_bytes_total'), n * 1000);
    t.equal(await tp.metric('weft_tcp_sent_bytes_total'), n * 1000);
    t.equal(tp.proxy.engine.activeConnections, 0, 'nothing left tracked');
  });

  t.test('drain: listeners close at once, a live opaque connection is aborted after the grace period', async (t) => {
    const server = await listen(() => {});
    t.teardown(() => server.close());
    const tp = await start(t, { opaquePorts: String(server.port) });
    tp.dst = { address: '127.0.0.1', port: server.port };
    const c = await dial(tp.outbound);
    const ended = readAll(c);
    c.write('x');
    await new Promise((r) => setTimeout(r, 50));
    t.equal(tp.proxy.engine.activeConnections, 1);
    const t0 = performance.now();
    const aborted = await tp.proxy.drain(300);
    t.ok(performance.now() - t0 >= 250, 'waited for the grace period');
    t.equal(aborted, 1, 'one connection had to be aborted');
    t.equal((await ended).error, 'ECONNRESET', 'the client sees an RST');
    t.equal((await dialAndRead(tp.outbound)).error, 'ECONNREFUSED', 'nothing listens any more');
  });
}
