// The socket half of the addon on loopback, without root: listen + Node adoption, addresses,
// SO_ORIGINAL_DST on a plain socket, cookies, RST on close, native connect, bad arguments.
import net from 'node:net';
import { once } from 'node:events';
import t, { type Test } from 'tap';
import {
  adoptSocket,
  connect,
  connectFd,
  connectSocket,
  fdOf,
  getNative,
  listen,
  listenServer,
  localAddress,
  nativeAvailable,
  originalDst,
  remoteAddress,
  resetAndClose,
  socketCookie,
  type ListenOptions,
} from './index.js';
import { collect, dial, startEcho, startServer } from './test-support.js';

if (!nativeAvailable()) {
  t.plan(0, 'native addon not built (npm run build:addon)');
} else {
  run();
}

async function roundTrip(
  t: Test,
  host: string,
  extra: Partial<ListenOptions> = {},
  dialHost = host,
): Promise<{ server: net.Server; accepted: net.Socket; client: net.Socket }> {
  const server = await listenServer({ host, port: 0, ...extra });
  const port = (server.address() as net.AddressInfo).port;
  const acceptedP = once(server, 'connection') as Promise<[net.Socket]>;
  const client = await dial(port, dialHost);
  const [accepted] = await acceptedP;
  t.teardown(() => {
    client.destroy();
    accepted.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { server, accepted, client };
}

function run(): void {
  t.test('listen(v4) is adopted by net.Server: accept and data both ways', async (t) => {
    const { server, accepted, client } = await roundTrip(t, '127.0.0.1');
    accepted.write('from-server');
    const [got] = (await once(client, 'data')) as [Buffer];
    t.equal(got.toString(), 'from-server');
    client.end('from-client');
    const { data } = await collect(accepted);
    t.equal(data.toString(), 'from-client');
    t.same(remoteAddress(fdOf(accepted)), { address: '127.0.0.1', port: client.localPort, family: 4 });
    t.same(localAddress(fdOf(accepted)), { address: '127.0.0.1', port: (server.address() as net.AddressInfo).port, family: 4 });
  });

  t.test('listen(v6 ::1) is adopted by net.Server', async (t) => {
    const { accepted, client } = await roundTrip(t, '::1');
    client.write('hello6');
    const [got] = (await once(accepted, 'data')) as [Buffer];
    t.equal(got.toString(), 'hello6');
    t.same(remoteAddress(fdOf(accepted)), { address: '::1', port: client.localPort, family: 6 });
  });

  t.test('dual-stack listener: IPv4 peers are reported unmapped', async (t) => {
    const { server, accepted, client } = await roundTrip(t, '::', { ipv6Only: false }, '127.0.0.1');
    const port = (server.address() as net.AddressInfo).port;
    t.same(remoteAddress(fdOf(accepted)), { address: '127.0.0.1', port: client.localPort, family: 4 });
    t.same(localAddress(fdOf(accepted)), { address: '127.0.0.1', port, family: 4 });
  });

  t.test('a second listener on a taken port fails with EADDRINUSE from bind', async (t) => {
    const server = await listenServer({ host: '127.0.0.1', port: 0, reuseAddr: false });
    t.teardown(() => server.close());
    const port = (server.address() as net.AddressInfo).port;
    t.throws(() => listen({ host: '127.0.0.1', port }), { code: 'EADDRINUSE', syscall: 'bind' });
  });

  t.test('originalDst is null on a connection that was not redirected', async (t) => {
    const { accepted } = await roundTrip(t, '127.0.0.1');
    t.equal(originalDst(fdOf(accepted), 4), null);
    t.equal(originalDst(fdOf(accepted), 6), null);
  });

  t.test('socketCookie: a bigint per socket, stable for the same socket', async (t) => {
    const { accepted, client } = await roundTrip(t, '127.0.0.1');
    const a = socketCookie(fdOf(accepted));
    const c = socketCookie(fdOf(client));
    t.equal(typeof a, 'bigint');
    t.ok(a > 0n && c > 0n);
    t.not(a, c, 'the two ends are different sockets');
    t.equal(socketCookie(fdOf(accepted)), a);
  });

  t.test('resetAndClose: the peer sees ECONNRESET, not EOF', async (t) => {
    const srv = await startServer(() => {});
    t.teardown(srv.close);
    const got = new Promise<Error & { code?: string }>((resolve) => {
      srv.server.once('connection', (s: net.Socket) => {
        s.once('error', resolve);
        s.once('end', () => resolve(new Error('EOF')));
      });
    });
    const fd = await connectFd({ address: '127.0.0.1', port: srv.port, timeoutMs: 2000 });
    resetAndClose(fd);
    t.match(await got, { code: 'ECONNRESET' });
  });

  t.test('connect: the fd is adopted by net.Socket and data flows', async (t) => {
    const echo = await startEcho();
    t.teardown(echo.close);
    const s = await connectSocket({ address: '127.0.0.1', port: echo.port, timeoutMs: 2000 });
    t.same(remoteAddress(fdOf(s)), { address: '127.0.0.1', port: echo.port, family: 4 });
    s.end('ping');
    const { data, error } = await collect(s);
    t.equal(error, null);
    t.equal(data.toString(), 'ping');
  });

  t.test('connect over IPv6 (::1)', async (t) => {
    const echo = await startEcho('::1');
    t.teardown(echo.close);
    const s = await connectSocket({ address: '::1', port: echo.port, timeoutMs: 2000 });
    t.same(remoteAddress(fdOf(s)), { address: '::1', port: echo.port, family: 6 });
    s.end('ping6');
    t.equal((await collect(s)).data.toString(), 'ping6');
  });

  t.test('connect with bindAddress uses that source address', async (t) => {
    const srv = await startServer(() => {});
    t.teardown(srv.close);
    const peer = once(srv.server, 'connection') as Promise<[net.Socket]>;
    const s = adoptSocket(await connectFd({ address: '127.0.0.1', port: srv.port, timeoutMs: 2000, bindAddress: '127.0.0.2' }));
    const [p] = await peer;
    t.equal(p.remoteAddress, '127.0.0.2');
    s.destroy();
  });

  t.test('connect to a closed port: ECONNREFUSED with syscall connect', async (t) => {
    const srv = await startServer(() => {});
    const port = srv.port;
    await srv.close();
    await t.rejects(connectFd({ address: '127.0.0.1', port, timeoutMs: 2000 }), {
      code: 'ECONNREFUSED',
      syscall: 'connect',
      address: '127.0.0.1',
      port,
    });
  });

  t.test('connect to a listener whose backlog is full: ETIMEDOUT', async (t) => {
    // Linux drops SYNs for a listener with a full accept queue (tcp_abort_on_overflow=0),
    // so once the queue (backlog 0: one entry) is full a connect can only time out.
    const fd = listen({ host: '127.0.0.1', port: 0, backlog: 0 });
    t.teardown(() => resetAndClose(fd));
    const port = localAddress(fd).port;
    const opened: number[] = [];
    t.teardown(() => opened.forEach((f) => resetAndClose(f)));
    let timedOut: (Error & { code?: string }) | null = null;
    for (let i = 0; i < 4 && !timedOut; i++) {
      try {
        opened.push(await connectFd({ address: '127.0.0.1', port, timeoutMs: 400 }));
      } catch (e) {
        timedOut = e as Error & { code?: string };
      }
    }
    t.match(timedOut, { code: 'ETIMEDOUT', syscall: 'connect' });
  });

  t.test('bad arguments throw TypeError with a usage string', async (t) => {
    const n = getNative();
    t.throws(() => listen({ host: 'localhost', port: 1 }), { name: 'TypeError', message: /numeric IPv4 or IPv6.*usage: listen\(/ });
    t.throws(() => listen({ host: '127.0.0.1', port: 70000 }), { name: 'TypeError', message: /port must be an integer in 0\.\.65535/ });
    t.throws(() => n.listen(undefined as never), { name: 'TypeError', message: /usage: listen/ });
    t.throws(() => localAddress(-1), { name: 'TypeError', message: /fd must be an integer >= 0/ });
    t.throws(() => remoteAddress('3' as never), { name: 'TypeError', message: /fd must be a number/ });
    t.throws(() => originalDst(0, 5 as never), { name: 'TypeError', message: /family must be 4 or 6/ });
    t.throws(() => socketCookie(1.5), { name: 'TypeError' });
    t.throws(() => connect({ address: '127.0.0.1', port: 0, timeoutMs: 10 }, () => {}), { name: 'TypeError', message: /port must be an integer in 1\.\.65535.*usage: connect/ });
    t.throws(() => connect({ address: '127.0.0.1', port: 80 } as never, () => {}), { name: 'TypeError', message: /timeoutMs is required/ });
    t.throws(() => n.connect({ address: '127.0.0.1', port: 80, timeoutMs: 10 }, undefined as never), { name: 'TypeError' });
    t.throws(() => connect({ address: '127.0.0.1', port: 80, timeoutMs: 10, bindAddress: '::1' }, () => {}), { name: 'TypeError', message: /same family/ });
    t.throws(() => n.relay(-1, 1, null, null, { idleTimeoutMs: 0 }, () => {}), { name: 'TypeError', message: /usage: relay/ });
    t.throws(() => n.relay(3, 4, 'x' as never, null, { idleTimeoutMs: 0 }, () => {}), { name: 'TypeError', message: /head must be a Buffer/ });
    t.throws(() => n.relay(3, 4, null, null, { idleTimeoutMs: 0, pipeSize: 1 }, () => {}), { name: 'TypeError', message: /pipeSize/ });
    t.throws(() => localAddress(2 ** 30), { code: 'EBADF', syscall: 'getsockname' });
  });
}
