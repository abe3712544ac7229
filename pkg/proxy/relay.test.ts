// Opaque TCP through the proxy (mode none, destination set by the test): byte-exact relay in
// both relay modes, half-close, RST both ways, connect failures, server-speaks-first.
import t from 'tap';
import { loadNativeCaps } from './native-bridge.js';
import { deterministicBytes, dial, dialAndRead, listen, readAll, sha256, startTestProxy } from './test-support.js';

const caps = loadNativeCaps();
const MB = 1024 * 1024;

for (const relay of ['js', 'native'] as const) {
  const skip = relay === 'native' && !caps.relay ? `native relay unavailable: ${caps.missing}` : false;

  t.test(`${relay} relay: bytes arrive exactly, both ways at once, and half-close passes through`, { skip }, async (t) => {
    const up = deterministicBytes(8 * MB, 7);
    const down = deterministicBytes(6 * MB, 11);
    let serverGot = '';
    const server = await listen((s) => {
      void readAll(s).then((r) => (serverGot = sha256(r.data)));
      s.on('end', () => s.end()); // answer a FIN only after the client's FIN
      s.write(down);
    });
    // Port 5432 is opaque by default; use an explicit list so detection is skipped.
    const tp = await startTestProxy({ relay, opaquePorts: `${server.port}` }, { native: relay === 'native' });
    t.teardown(async () => {
      await tp.close();
      await server.close();
    });
    tp.dst = { address: '127.0.0.1', port: server.port };
    const c = await dial(tp.outbound);
    const got = readAll(c);
    c.end(up);
    const r = await got;
    t.equal(r.error, undefined, 'no error');
    t.equal(r.data.length, down.length, 'all bytes from the server');
    t.equal(sha256(r.data), sha256(down), 'server → client is byte-exact');
    await new Promise((r) => setTimeout(r, 50));
    t.equal(serverGot, sha256(up), 'client → server is byte-exact');
    t.equal(await tp.metric('weft_tcp_received_bytes_total', { direction: 'outbound' }), up.length, 'received bytes counted');
    t.equal(await tp.metric('weft_tcp_sent_bytes_total', { direction: 'outbound' }), down.length, 'sent bytes counted');
    t.equal(await tp.metric('weft_tcp_connections_closed_total'), 1, 'one connection closed');
  });

  t.test(`${relay} relay: a client half-close still gets the whole reply`, { skip }, async (t) => {
    const server = await listen((s) => {
      const parts: Buffer[] = [];
      s.on('data', (b: Buffer) => parts.push(b));
      // Reply only after the client's FIN: proves the FIN crossed and the reverse stayed open.
      s.on('end', () => s.end(Buffer.concat([Buffer.from('got:'), ...parts])));
    });
    const tp = await startTestProxy({ relay, opaquePorts: `${server.port}` }, { native: relay === 'native' });
    t.teardown(async () => {
      await tp.close();
      await server.close();
    });
    tp.dst = { address: '127.0.0.1', port: server.port };
    const c = await dial(tp.outbound);
    const got = readAll(c);
    c.end('hello');
    t.equal((await got).data.toString(), 'got:hello');
  });

  t.test(`${relay} relay: the server half-closes first and the client can still send`, { skip }, async (t) => {
    let serverGot: Promise<string> = Promise.resolve('');
    const server = await listen((s) => {
      serverGot = readAll(s).then((r) => r.data.toString());
      s.end('bye');
    });
    const tp = await startTestProxy({ relay, opaquePorts: `${server.port}` }, { native: relay === 'native' });
    t.teardown(async () => {
      await tp.close();
      await server.close();
    });
    tp.dst = { address: '127.0.0.1', port: server.port };
    const c = await dial(tp.outbound);
    c.resume();
    await new Promise<void>((r) => c.once('end', () => r()));
    c.end('after your FIN');
    await new Promise((r) => setTimeout(r, 50));
    t.equal(await serverGot, 'after your FIN');
  });

  t.test(`${relay} relay: an RST from the server reaches the client as an RST`, { skip }, async (t) => {
    const server = await listen((s) => {
      s.once('data', () => s.resetAndDestroy());
    });
    const tp = await startTestProxy({ relay, opaquePorts: `${server.port}` }, { native: relay === 'native' });
    t.teardown(async () => {
      await tp.close();
      await server.close();
    });
    tp.dst = { address: '127.0.0.1', port: server.port };
    const c = await dial(tp.outbound);
    const got = readAll(c);
    c.write('x');
    t.equal((await got).error, 'ECONNRESET');
  });

  t.test(`${relay} relay: an RST from the client reaches the server as an RST`, { skip }, async (t) => {
    let serverEnd!: Promise<{ error: string | undefined }>;
    const connected = new Promise<void>((resolve) => {
      void listen((s) => {
        serverEnd = readAll(s);
        resolve();
      }).then((server) => {
        t.teardown(() => server.close());
        void startTestProxy({ relay, opaquePorts: `${server.port}` }, { native: relay === 'native' }).then(async (tp) => {
          t.teardown(() => tp.close());
          tp.dst = { address: '127.0.0.1', port: server.port };
          const c = await dial(tp.outbound);
          c.write('x');
          setTimeout(() => c.resetAndDestroy(), 50);
        });
      });
    });
    await connected;
    t.equal((await serverEnd).error, 'ECONNRESET');
  });
}

for (const relay of ['js', 'native'] as const) {
  t.test(`${relay} relay: an idle connection is closed after --idle-timeout-ms`, { skip: relay === 'native' && !caps.relay ? `native relay unavailable: ${caps.missing}` : false }, async (t) => {
    // The proxy closes (FIN or RST): either ends the stream for the peers.
    const ended = (s: import('node:net').Socket) => new Promise<void>((r) => (s.resume(), s.once('end', r).once('close', r)));
    let serverEnd!: Promise<unknown>;
    const server = await listen((s) => (serverEnd = ended(s)));
    const tp = await startTestProxy({ relay, opaquePorts: `${server.port}`, idleTimeoutMs: 300 }, { native: relay === 'native' });
    t.teardown(async () => {
      await tp.close();
      await server.close();
    });
    tp.dst = { address: '127.0.0.1', port: server.port };
    const c = await dial(tp.outbound);
    const t0 = performance.now();
    c.write('one byte, then silence');
    await ended(c);
    await serverEnd;
    t.ok(performance.now() - t0 >= 250, 'not before the timeout');
    await new Promise((r) => setTimeout(r, 50));
    t.equal(await tp.metric('weft_tcp_connections_closed_total'), 1, 'closed by the proxy');
  });
}

for (const relay of ['js', 'native'] as const) {
  const skip = relay === 'native' && !caps.pool ? `native connection path unavailable: ${caps.missing}` : false;
  const opts = { native: relay === 'native' };

  t.test(`${relay} path: connect refused: the client gets an RST and the failure is counted`, { skip }, async (t) => {
    const server = await listen(() => {});
    const dead = server.port;
    await server.close();
    const tp = await startTestProxy({ relay }, opts);
    t.teardown(() => tp.close());
    tp.dst = { address: '127.0.0.1', port: dead };
    const r = await dialAndRead(tp.outbound);
    t.equal(r.error, 'ECONNRESET');
    await new Promise((r) => setTimeout(r, 50));
    t.equal(await tp.metric('weft_tcp_connection_failures_total', { direction: 'outbound', reason: 'connect_refused' }), 1);
    t.equal(await tp.metric('weft_tcp_connections_closed_total'), 1, 'and counted as closed');
  });

  t.test(`${relay} path: a destination that is the proxy itself is refused with an RST (no loop)`, { skip }, async (t) => {
    const tp = await startTestProxy({ relay }, opts);
    t.teardown(() => tp.close());
    tp.dst = { address: '127.0.0.1', port: tp.inbound };
    t.equal((await dialAndRead(tp.outbound)).error, 'ECONNRESET');
    t.equal(await tp.metric('weft_tcp_connection_failures_total', { reason: 'loop' }), 1);
  });

  t.test(`${relay} path: server speaks first: the banner reaches a silent client`, { skip }, async (t) => {
    const server = await listen((s) => s.write('220 banner\r\n'));
    for (const [name, opaque, limitMs] of [
      ['on a detected port, within the detection timeout', '', 300 + 250],
      ['on an opaque port, without waiting for detection', String(server.port), 250],
    ] as const) {
      const tp = await startTestProxy({ relay, detectTimeoutMs: 300, opaquePorts: opaque }, opts);
      tp.dst = { address: '127.0.0.1', port: server.port };
      const t0 = performance.now();
      const c = await dial(tp.outbound);
      const banner = await new Promise<string>((r) => c.once('data', (b: Buffer) => r(b.toString())));
      const ms = performance.now() - t0;
      t.equal(banner, '220 banner\r\n', `${name}: got the banner without sending`);
      t.ok(ms < limitMs, `${name}: took ${ms.toFixed(0)} ms (limit ${limitMs})`);
      c.destroy();
      await tp.close();
    }
    await server.close();
  });
}

t.test('native relay: a conversation that outgrows the JS start keeps every byte and the idle timeout across the handover', { skip: caps.relay ? false : `native relay unavailable: ${caps.missing}` }, async (t) => {
  const server = await listen((s) => {
    s.on('data', (b: Buffer) => s.write(b));
    s.on('end', () => s.end());
  });
  const tp = await startTestProxy({ relay: 'native', opaquePorts: `${server.port}`, idleTimeoutMs: 400 }, { native: true });
  t.teardown(async () => {
    await tp.close();
    await server.close();
  });
  tp.dst = { address: '127.0.0.1', port: server.port };
  const c = await dial(tp.outbound);
  let pending = Buffer.alloc(0);
  let want: { n: number; resolve: (b: Buffer) => void } | null = null;
  const take = (): void => {
    if (!want || pending.length < want.n) return;
    const b = pending.subarray(0, want.n);
    pending = pending.subarray(want.n);
    const w = want;
    want = null;
    w.resolve(b);
  };
  c.on('data', (b: Buffer) => {
    pending = Buffer.concat([pending, b]);
    take();
  });
  const closed = new Promise<void>((r) => c.once('close', () => r()));
  // 200 round trips of 1 KiB: the handover (after 64 KiB) happens in the middle.
  let exact = 0;
  for (let i = 0; i < 200; i++) {
    const msg = deterministicBytes(1024, i + 1);
    const echoed = new Promise<Buffer>((resolve) => (want = { n: msg.length, resolve }));
    take();
    c.write(msg);
    if ((await echoed).equals(msg)) exact++;
  }
  t.equal(exact, 200, 'every round trip came back byte-exact');
  const t0 = performance.now();
  await closed;
  t.ok(performance.now() - t0 >= 300, 'the idle timeout still applies after the handover');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(await tp.metric('weft_tcp_received_bytes_total', { direction: 'outbound' }), 200 * 1024, 'received bytes counted across both relays');
  t.equal(await tp.metric('weft_tcp_sent_bytes_total', { direction: 'outbound' }), 200 * 1024, 'sent bytes counted across both relays');
});
