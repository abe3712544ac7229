// The admin routes, through the server's inject (no socket): readiness, metrics text, config without
// secrets, the loopback-only shutdown, and app probes replayed against the app.
import { createServer } from 'node:http';
import t, { type Test } from 'tap';
import { proxyConfigFrom } from '../api/proxy-config.js';
import { createLogger } from '../log/index.js';
import { createProxyMetrics } from '../metrics/proxy.js';
import { createRegistry } from '../metrics/registry.js';
import { buildAdmin } from './admin.js';
import { freePort } from './test-support.js';

async function app(t: Test, probes: Record<string, unknown> = {}) {
  let ready = false;
  let shutdowns = 0;
  const registry = createRegistry({ defaultLabels: { pod: 'web-0', namespace: 'shop' } });
  const m = createProxyMetrics(registry);
  m.bound('inbound', 'cluster').opened.inc(3);
  const config = proxyConfigFrom({ mode: 'none', appProbes: probes, controller: 'https://user:secret@ctl.weft:8443/x?token=abc' });
  const a = buildAdmin({ config, log: createLogger('t', 'silent'), registry, ready: () => ready, describe: () => ({ state: 'x' }), shutdown: () => shutdowns++ });
  t.teardown(() => a.close());
  return { a, setReady: (v: boolean) => (ready = v), shutdowns: () => shutdowns };
}

t.test('/ready follows the proxy state; /live is always 200', async (t) => {
  const { a, setReady } = await app(t);
  t.equal((await a.inject({ url: '/ready' })).statusCode, 503);
  setReady(true);
  t.equal((await a.inject({ url: '/ready' })).statusCode, 200);
  t.equal((await a.inject({ url: '/live' })).statusCode, 200);
});

t.test('/metrics is Prometheus text with the default labels', async (t) => {
  const { a } = await app(t);
  const r = await a.inject({ url: '/metrics' });
  t.match(r.headers['content-type'], /text\/plain/);
  t.match(r.body, /weft_tcp_connections_opened_total\{direction="inbound",peer="cluster",(namespace="shop",pod="web-0"|pod="web-0",namespace="shop")\} 3/);
});

t.test('/config shows the effective config without secrets', async (t) => {
  const { a } = await app(t, { 'web/livez': { httpGet: { port: 8080, path: '/healthz', httpHeaders: [{ name: 'Authorization', value: 'Bearer s3cr3t' }] } } });
  const r = await a.inject({ url: '/config' });
  t.equal(r.statusCode, 200);
  t.match(r.json(), { config: { mode: 'none', inboundPort: 15006, opaquePorts: [25, 587, 3306, 4444, 5432, 6379, 9300, 11211] } });
  // Only the credentials: a file path such as /var/run/secrets/… may appear.
  t.notMatch(r.body, /user:secret|s3cr3t|token=abc/);
});

t.test('POST /shutdown: 403 from a non-loopback peer, accepted from loopback', async (t) => {
  const { a, shutdowns } = await app(t);
  const far = await a.inject({ method: 'POST', url: '/shutdown', remoteAddress: '10.1.2.3' });
  t.equal(far.statusCode, 403);
  const mapped = await a.inject({ method: 'POST', url: '/shutdown', remoteAddress: '::ffff:10.1.2.3' });
  t.equal(mapped.statusCode, 403);
  await new Promise((r) => setImmediate(r));
  t.equal(shutdowns(), 0);
  const near = await a.inject({ method: 'POST', url: '/shutdown', remoteAddress: '127.0.0.1' });
  t.equal(near.statusCode, 200);
  await new Promise((r) => setImmediate(r));
  t.equal(shutdowns(), 1);
});

t.test('/app-health replays the app probe and returns its status', async (t) => {
  let status = 200;
  let sawHeader = '';
  const server = createServer((req, res) => {
    sawHeader = String(req.headers['x-probe'] ?? '');
    res.writeHead(req.url === '/healthz' ? status : 404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const closed = await freePort();
  const { a } = await app(t, {
    'web/readyz': { httpGet: { port, path: '/healthz', httpHeaders: [{ name: 'X-Probe', value: 'yes' }] } },
    'web/livez': { tcpSocket: { port } },
    'web/startupz': { tcpSocket: { port: closed } },
  });
  t.equal((await a.inject({ url: '/app-health/web/readyz' })).statusCode, 200);
  t.equal(sawHeader, 'yes', 'probe headers are sent');
  status = 500;
  t.equal((await a.inject({ url: '/app-health/web/readyz' })).statusCode, 500, "the app's own failure status");
  t.equal((await a.inject({ url: '/app-health/web/livez' })).statusCode, 200, 'tcpSocket probe ok');
  t.equal((await a.inject({ url: '/app-health/web/startupz' })).statusCode, 503, 'tcpSocket probe to a closed port');
  t.equal((await a.inject({ url: '/app-health/other/livez' })).statusCode, 404);
  t.equal((await a.inject({ url: '/app-health/web/bogus' })).statusCode, 404);
});

t.test('unknown routes and methods are 404; HEAD answers like GET without a body', async (t) => {
  const { a, setReady } = await app(t);
  setReady(true);
  t.equal((await a.inject({ url: '/nope' })).statusCode, 404);
  t.equal((await a.inject({ method: 'POST', url: '/ready' })).statusCode, 404);
  t.equal((await a.inject({ method: 'GET', url: '/shutdown' })).statusCode, 404, 'shutdown needs POST');
  t.equal((await a.inject({ url: '/ready?verbose=1' })).statusCode, 200, 'a query string does not change the route');
  await a.listen({ host: '127.0.0.1', port: 0 });
  const port = (a.server.address() as { port: number }).port;
  const head = await fetch(`http://127.0.0.1:${port}/ready`, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(await head.text(), '', 'no body');
  const get = await fetch(`http://127.0.0.1:${port}/live`);
  t.equal(await get.text(), 'live\n');
});
