// The native relay on loopback (no root): client → proxy (native connect + relaySockets) →
// server. Integrity, head/tail order, half-close both ways, RST, idle, abort, bounded
// buffering with a reader that never reads, and many relays at once.
import { randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import t, { type Test } from 'tap';
import { connectSocket, fdOf, nativeAvailable, pipePoolMax, relay, relaySockets, type RelayResult } from './index.js';
import {
  collect,
  dial,
  hashUntilEnd,
  makeChunks,
  sendAll,
  sleep,
  startEcho,
  startHashSink,
  startRelayProxy,
  startServer,
  type RelayProxy,
  type Started,
} from './test-support.js';

if (!nativeAvailable()) {
  t.plan(0, 'native addon not built (npm run build:addon)');
} else {
  run();
}

async function through(t: Test, upstream: Started, opts: Parameters<typeof startRelayProxy>[1] = {}): Promise<RelayProxy> {
  t.teardown(upstream.close);
  const proxy = await startRelayProxy(upstream.port, opts);
  t.teardown(proxy.close);
  return proxy;
}

/** Pipe fds this process holds (each live relay holds four). */
function countPipes(): number {
  return readdirSync('/proc/self/fd').filter((f) => {
    try {
      return readlinkSync(`/proc/self/fd/${f}`).startsWith('pipe:');
    } catch {
      return false;
    }
  }).length;
}

function run(): void {
  t.test('64 MiB through the relay and back: SHA-256 equal, counters match', async (t) => {
    const proxy = await through(t, await startEcho());
    const client = await dial(proxy.port);
    const received = hashUntilEnd(client);
    const sent = await sendAll(client, makeChunks(randomBytes(1 << 20), 64 << 20));
    const got = await received;
    t.equal(got.bytes, 64 << 20);
    t.equal(got.hex, sent, 'bytes received equal bytes sent');
    const r = await proxy.relays[0]!.result;
    t.same(r, { bytesUp: 64 << 20, bytesDown: 64 << 20, reason: 'eof' });
    t.same(proxy.relays[0]!.handle.stats(), { bytesUp: 64 << 20, bytesDown: 64 << 20 });
  });

  t.test('head goes to the server first, tail to the client first, in order', async (t) => {
    let serverGot = Buffer.alloc(0);
    const upstream = await startServer((s) => {
      s.on('data', (d: Buffer) => (serverGot = Buffer.concat([serverGot, d])));
      s.on('end', () => s.end('server-reply'));
    });
    const proxy = await through(t, upstream, { peekBytes: 5, tail: Buffer.from('TAIL:') });
    const client = await dial(proxy.port);
    const got = collect(client);
    client.write('HEAD:');
    await proxy.waitFor(1);
    client.end('rest-of-request');
    const { data, error } = await got;
    t.equal(error, null);
    t.equal(data.toString(), 'TAIL:server-reply');
    t.equal(serverGot.toString(), 'HEAD:rest-of-request');
    t.same(await proxy.relays[0]!.result, { bytesUp: 20, bytesDown: 17, reason: 'eof' });
  });

  t.test('the JS sockets are destroyed at handover without FIN or RST reaching either peer', async (t) => {
    const proxy = await through(t, await startEcho());
    const client = await dial(proxy.port);
    let ended = false;
    client.on('end', () => (ended = true));
    await proxy.waitFor(1);
    await sleep(100);
    t.equal(ended, false, 'client saw no EOF after the proxy destroyed its sockets');
    client.end('still-relayed');
    const { data, error } = await collect(client);
    t.equal(error, null);
    t.equal(data.toString(), 'still-relayed');
  });

  t.test('half-close, client first: the client still gets the reply after shutdown(SHUT_WR)', async (t) => {
    const upstream = await startServer((s) => {
      const parts: Buffer[] = [];
      s.on('data', (d: Buffer) => parts.push(d));
      s.on('end', () => setTimeout(() => s.end(`got ${Buffer.concat(parts).toString()}`), 50));
    });
    const proxy = await through(t, upstream);
    const client = await dial(proxy.port);
    const got = collect(client);
    client.end('question');
    const { data, error } = await got;
    t.equal(error, null);
    t.equal(data.toString(), 'got question');
    t.equal((await proxy.relays[0]!.result).reason, 'eof');
  });

  t.test('half-close, server first: the client can still send after the server ended', async (t) => {
    let serverGot: Promise<{ data: Buffer; error: Error | null }> | undefined;
    const upstream = await startServer((s) => {
      serverGot = collect(s);
      s.end('banner');
    });
    const proxy = await through(t, upstream);
    const client = await dial(proxy.port);
    const { data } = await collect(client);
    t.equal(data.toString(), 'banner', 'client read the banner and EOF');
    client.end('after-eof');
    const srv = await serverGot!;
    t.equal(srv.error, null);
    t.equal(srv.data.toString(), 'after-eof');
    t.same(await proxy.relays[0]!.result, { bytesUp: 9, bytesDown: 6, reason: 'eof' });
  });

  t.test('RST from the server reaches the client as ECONNRESET', async (t) => {
    const upstream = await startServer((s) => {
      s.once('data', () => s.resetAndDestroy());
    });
    const proxy = await through(t, upstream);
    const client = await dial(proxy.port);
    const got = collect(client);
    client.write('hello');
    const { error } = await got;
    t.match(error, { code: 'ECONNRESET' });
    t.equal((await proxy.relays[0]!.result).reason, 'reset');
  });

  t.test('RST from the client reaches the server as ECONNRESET', async (t) => {
    let serverSide: Promise<{ error: Error | null }> | undefined;
    const upstream = await startServer((s) => (serverSide = collect(s)));
    const proxy = await through(t, upstream);
    const client = await dial(proxy.port);
    await proxy.waitFor(1);
    client.resetAndDestroy();
    const r = await proxy.relays[0]!.result;
    t.equal(r.reason, 'reset');
    t.match((await serverSide!).error, { code: 'ECONNRESET' });
  });

  t.test('idle timeout closes both sides with RST', async (t) => {
    let serverSide: Promise<{ error: Error | null }> | undefined;
    const upstream = await startServer((s) => (serverSide = collect(s)));
    const proxy = await through(t, upstream, { idleTimeoutMs: 300 });
    const client = await dial(proxy.port);
    const got = collect(client);
    client.write('one');
    const started = Date.now();
    const { error } = await got;
    t.match(error, { code: 'ECONNRESET' });
    t.ok(Date.now() - started >= 250, 'not before the idle timeout');
    t.same(await proxy.relays[0]!.result, { bytesUp: 3, bytesDown: 0, reason: 'idle' });
    t.match((await serverSide!).error, { code: 'ECONNRESET' });
  });

  t.test('traffic keeps the idle timer from firing', async (t) => {
    const proxy = await through(t, await startEcho(), { idleTimeoutMs: 1000 });
    const client = await dial(proxy.port);
    const got = collect(client);
    for (let i = 0; i < 8; i++) {
      client.write('tick');
      await sleep(200);
    }
    client.end();
    const { data, error } = await got;
    t.equal(error, null);
    t.equal(data.toString(), 'tick'.repeat(8), '1.6 s of traffic, 200 ms apart, through a 1 s idle timeout');
    t.equal((await proxy.relays[0]!.result).reason, 'eof');
  });

  t.test('abort() resets both sides; abort again is a no-op', async (t) => {
    let serverSide: Promise<{ error: Error | null }> | undefined;
    const upstream = await startServer((s) => (serverSide = collect(s)));
    const proxy = await through(t, upstream);
    const client = await dial(proxy.port);
    const got = collect(client);
    await proxy.waitFor(1);
    const { handle, result } = proxy.relays[0]!;
    handle.abort();
    handle.abort();
    t.match((await got).error, { code: 'ECONNRESET' });
    t.match((await serverSide!).error, { code: 'ECONNRESET' });
    t.equal((await result).reason, 'aborted');
    handle.abort();
    t.same(handle.stats(), { bytesUp: 0, bytesDown: 0 });
  });

  t.test('done is called exactly once, on the JS thread, even with abort() racing the end', async (t) => {
    const echo = await startEcho();
    t.teardown(echo.close);
    const srv = await startServer(() => {});
    t.teardown(srv.close);
    const accepted = new Promise<net.Socket>((r) => srv.server.once('connection', r));
    const up = await connectSocket({ address: '127.0.0.1', port: echo.port, timeoutMs: 2000 });
    const down = await dial(srv.port);
    down.on('error', () => {}); // the abort resets it
    const downPeer = await accepted;
    const calls: RelayResult[] = [];
    const handle = relay(fdOf(downPeer), fdOf(up), null, null, { idleTimeoutMs: 0 }, (r) => calls.push(r));
    downPeer.destroy();
    up.destroy();
    down.end('x');
    handle.abort();
    handle.abort();
    await sleep(300);
    handle.abort();
    await sleep(100);
    t.equal(calls.length, 1);
    t.match(calls[0], { reason: /^(aborted|eof)$/ });
    down.destroy();
  });

  t.test('relaySockets refuses a socket Node already ended, and one with unflushed writes', async (t) => {
    const srv = await startServer(() => {});
    t.teardown(srv.close);
    const a = await dial(srv.port);
    const b = await dial(srv.port);
    t.teardown(() => {
      a.destroy();
      b.destroy();
    });
    b.end();
    t.throws(() => relaySockets(a, b, { idleTimeoutMs: 0 }), { code: 'WEFT_ERR_NATIVE', message: /up socket was already ended/ });
    const c = await dial(srv.port);
    t.teardown(() => c.destroy());
    c.cork();
    c.write('pending');
    t.throws(() => relaySockets(c, a, { idleTimeoutMs: 0 }), { code: 'WEFT_ERR_NATIVE', message: /down socket has 7 unflushed bytes/ });
  });

  t.test('a client that never reads: the relay buffers a bounded amount and the server is throttled', async (t) => {
    const total = 256 << 20;
    let serverSock: net.Socket | undefined;
    let offered = 0;
    const upstream = await startServer((s) => {
      serverSock = s;
      const chunk = Buffer.alloc(1 << 20, 7);
      const pump = (): void => {
        while (offered < total) {
          offered += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    const proxy = await through(t, upstream, { pipeSize: 65536 });
    const client = await dial(proxy.port);
    client.pause();
    await proxy.waitFor(1);
    const { handle, result } = proxy.relays[0]!;
    // Wait until the counter stops moving (every buffer on the way is full).
    let last = -1;
    for (let i = 0, still = 0; i < 100 && still < 3; i++) {
      const now = handle.stats().bytesDown;
      still = now === last ? still + 1 : 0;
      last = now;
      await sleep(200);
    }
    const stalled = handle.stats().bytesDown;
    await sleep(300);
    t.equal(handle.stats().bytesDown, stalled, 'no progress while the client does not read');
    t.ok(stalled < 32 << 20, `relayed only ${stalled} bytes (socket buffers + pipe), not all ${total}`);
    t.ok(serverSock!.writableLength > 0, 'backpressure reached the server: its writes are queued in Node');
    t.ok(offered < total, 'the server has not been able to offer everything');
    // Once the client reads, everything arrives.
    client.resume();
    const { data, error } = await collect(client);
    t.equal(error, null);
    t.equal(data.length, total);
    client.end();
    t.same(await result, { bytesUp: 0, bytesDown: total, reason: 'eof' });
  });

  t.test('200 concurrent relays each deliver their own bytes; their pipes are pooled, never leaked', async (t) => {
    const pipesBefore = countPipes();
    const proxy = await through(t, await startEcho());
    const n = 200;
    const wave = async (): Promise<number> => {
      const results = await Promise.all(
        Array.from({ length: n }, async () => {
          const payload = randomBytes(64 << 10);
          const client = await dial(proxy.port);
          const got = collect(client);
          client.end(payload);
          const { data, error } = await got;
          return error === null && data.equals(payload);
        }),
      );
      t.equal(results.filter(Boolean).length, n, 'every client got exactly its own payload back');
      const ends = await Promise.all(proxy.relays.splice(0).map((r) => r.result));
      t.equal(ends.filter((r) => r.reason === 'eof' && r.bytesUp === 64 << 10 && r.bytesDown === 64 << 10).length, n);
      return countPipes();
    };
    // Two fds per pipe, two pipes per relay (800 fds a wave if they leaked): empty pipes go
    // back to a bounded pool, however many relays come and go.
    for (const name of ['first', 'second', 'third']) {
      const open = (await wave()) - pipesBefore;
      t.ok(open <= 2 * pipePoolMax(), `after the ${name} wave at most the pool's ${pipePoolMax()} pipes stay open (${open} fds)`);
    }
  });

  t.test('bytes a hash sink saw equal what the client sent (upstream direction alone)', async (t) => {
    const proxy = await through(t, await startHashSink());
    const client = await dial(proxy.port);
    const reply = collect(client);
    const sent = await sendAll(client, makeChunks(randomBytes(1 << 20), 16 << 20));
    t.equal((await reply).data.toString(), sent);
  });
}
