// Readiness, drain and memory bounds: /ready follows the listeners, a drain loses no
// completed request, a client that never reads does not make the proxy buffer without bound.
import { Agent, createServer, request } from 'node:http';
import t from 'tap';
import { loadNativeCaps } from './native-bridge.js';
import { dial, listen, startTestProxy, type TestProxy } from './test-support.js';

const get = (port: number, path: string, agent?: Agent): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ...(agent ? { agent } : { agent: false }) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject).end();
  });

t.test('/ready is 200 once listening and 503 from the moment a drain starts', async (t) => {
  const tp = await startTestProxy();
  t.teardown(() => tp.close());
  t.equal((await get(tp.admin, '/ready')).status, 200);
  t.equal((await get(tp.admin, '/live')).status, 200);
  const slow = await listen(() => {});
  t.teardown(() => slow.close());
  tp.dst = { address: '127.0.0.1', port: slow.port };
  const c = await dial(tp.outbound); // keeps the drain waiting
  c.write('x');
  await new Promise((r) => setTimeout(r, 50));
  const draining = tp.proxy.drain(300);
  t.equal((await get(tp.admin, '/ready')).status, 503, 'draining: not ready');
  t.equal(await draining, 1, 'the idle opaque connection was closed at the end of the grace period');
});

t.test('drain: every request the upstream answered reaches its client', async (t) => {
  let answered = 0;
  const server = createServer((req, res) => {
    setTimeout(() => {
      res.on('finish', () => answered++);
      res.end(`done ${req.url}`);
    }, 10);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const tp: TestProxy = await startTestProxy();
  tp.dst = { address: '127.0.0.1', port: (server.address() as { port: number }).port };
  let received = 0;
  let failed = 0;
  let stop = false;
  const clients = Array.from({ length: 4 }, async (_, k) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; !stop && i < 1000; i++) {
      try {
        const r = await get(tp.outbound, `/${k}/${i}`, agent);
        if (r.body === `done /${k}/${i}`) received++;
      } catch {
        failed++; // refused or closed before an answer: never a lost answer
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    agent.destroy();
  });
  await new Promise((r) => setTimeout(r, 200));
  const aborted = await tp.proxy.drain(2000);
  stop = true;
  await Promise.all(clients);
  await new Promise((r) => setTimeout(r, 50));
  t.equal(aborted, 0, 'nothing had to be cut at the end of the grace period');
  t.ok(received > 10, `requests flowed before the drain (${received}, ${failed} refused after)`);
  t.equal(received, answered, 'every answered request arrived complete');
  t.equal(await tp.metric('weft_requests_total', { response_code: '200' }), answered, 'and was counted');
});

const caps = loadNativeCaps();
for (const relay of ['js', 'native'] as const) {
  t.test(`a client that never reads does not grow the proxy's memory (${relay} relay)`, { skip: relay === 'native' && !caps.relay ? `native relay unavailable: ${caps.missing}` : false }, async (t) => {
    const chunk = Buffer.alloc(1 << 20, 7);
    let accepted = 0;
    let stopped = false;
    const server = await listen((s) => {
      const pump = (): void => {
        while (!stopped && !s.destroyed) {
          if (!s.write(chunk, () => (accepted += chunk.length))) return void s.once('drain', pump);
        }
      };
      pump();
    });
    const tp = await startTestProxy({ relay, opaquePorts: `${server.port}` }, { native: relay === 'native' });
    t.teardown(async () => {
      stopped = true;
      await tp.close();
      await server.close();
    });
    tp.dst = { address: '127.0.0.1', port: server.port };
    const rss0 = process.memoryUsage().rss;
    const c = await dial(tp.outbound);
    c.pause();
    await new Promise((r) => setTimeout(r, 1500));
    const plateau = accepted;
    await new Promise((r) => setTimeout(r, 500));
    const growth = process.memoryUsage().rss - rss0;
    t.ok(accepted <= plateau + (1 << 20), `the upstream is held back (${(plateau / 2 ** 20).toFixed(1)} MiB in flight, then ${(accepted / 2 ** 20).toFixed(1)})`);
    t.ok(accepted < 64 * 2 ** 20, 'bounded well below what it tried to send');
    t.ok(growth < 64 * 2 ** 20, `RSS grew ${(growth / 2 ** 20).toFixed(1)} MiB`);
    c.destroy();
  });
}
