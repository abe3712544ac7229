// App probes replayed by the proxy against real servers: a grpc.health.v1 server written
// here on node:http2 (plaintext HTTP/2, as the kubelet probes), and the probe timeouts.
import { createServer as createHttpServer } from 'node:http';
import { createServer as createH2Server, type ServerHttp2Stream } from 'node:http2';
import t, { type Test } from 'tap';
import { appProbeSchema, proxyConfigFrom } from '../api/proxy-config.js';
import { createLogger } from '../log/index.js';
import { createRegistry } from '../metrics/registry.js';
import { buildAdmin } from './admin.js';
import { decodeHealthCheckResponse, encodeHealthCheckRequest, runProbe, runProbeOn } from './app-health.js';
import { freePort } from './test-support.js';

const SERVING = 1;
const NOT_SERVING = 2;

/** The request's `service` (field 1), decoded independently of the code under test. */
function serviceOf(body: Buffer): string {
  const msg = body.subarray(5, 5 + body.readUInt32BE(1));
  if (msg.length === 0) return '';
  if (msg[0] !== 0x0a) throw new Error(`unexpected tag ${msg[0]}`);
  return msg.subarray(2, 2 + (msg[1] ?? 0)).toString('utf8');
}

interface Seen {
  path: string;
  contentType: string;
  te: string;
  service: string;
}

/** A grpc.health.v1 Health server: '' and shop.Api serve, db does not, slow answers after 1.5 s, others are NOT_FOUND. */
async function healthServer(t: Test): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createH2Server();
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const service = serviceOf(Buffer.concat(chunks));
      seen.push({ path: String(headers[':path']), contentType: String(headers['content-type']), te: String(headers.te), service });
      if (!['', 'shop.Api', 'db', 'slow'].includes(service)) {
        // Trailers-only, as grpc-go answers an unknown service.
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': encodeURIComponent(`unknown service ${service}`) }, { endStream: true });
        return;
      }
      const reply = () => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        // An unknown field (2, a string) before the status: the decoder must skip it.
        const msg = Buffer.from([0x12, 0x02, 0x68, 0x69, 0x08, service === 'db' ? NOT_SERVING : SERVING]);
        const frame = Buffer.alloc(5);
        frame.writeUInt32BE(msg.length, 1);
        stream.end(Buffer.concat([frame, msg]));
      };
      if (service === 'slow') setTimeout(reply, 1500);
      else reply();
    });
    stream.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as { port: number }).port, seen };
}

t.test('grpc probes: Health/Check over HTTP/2 against a real gRPC health server', async (t) => {
  const { port, seen } = await healthServer(t);
  const grpc = (service: string, timeoutSeconds?: number) => ({ grpc: { port, service }, ...(timeoutSeconds ? { timeoutSeconds } : {}) });

  t.match(await runProbe(grpc(''), '127.0.0.1'), { status: 200, detail: 'grpc SERVING' });
  t.same(seen.at(-1), { path: '/grpc.health.v1.Health/Check', contentType: 'application/grpc', te: 'trailers', service: '' }, 'the request the kubelet would send');
  t.match(await runProbe(grpc('shop.Api'), '127.0.0.1'), { status: 200 });
  t.equal(seen.at(-1)?.service, 'shop.Api', 'the service name is sent');
  t.match(await runProbe(grpc('db'), '127.0.0.1'), { status: 503, detail: 'grpc NOT_SERVING' });
  t.match(await runProbe(grpc('nope'), '127.0.0.1'), { status: 503, detail: 'grpc-status 5 (unknown service nope)' }, 'a trailers-only error');

  t.match(await runProbe(grpc('slow', 1), '127.0.0.1'), { status: 503, detail: /timed out/ }, 'the default 1 s is too short for a 1.5 s answer');
  t.match(await runProbe(grpc('slow', 4), '127.0.0.1'), { status: 200 }, 'timeoutSeconds 4 waits for it');

  const closed = await freePort();
  t.match(await runProbe({ grpc: { port: closed, service: '' } }, '127.0.0.1'), { status: 503, unreachable: true });
  t.match(await runProbeOn(grpc(''), ['127.0.0.3', '127.0.0.1']), { status: 200 }, 'an address where nothing listens is skipped for the next');
});

t.test('grpc probes through the admin route, from the config the injector writes', async (t) => {
  const { port } = await healthServer(t);
  const probes = { 'api/livez': { grpc: { port } }, 'api/readyz': { grpc: { port, service: 'db' } } };
  t.ok(appProbeSchema.safeParse(probes['api/livez']).success, 'the proxy schema takes a grpc probe (service defaults to "")');
  const config = proxyConfigFrom({ mode: 'none', appProbes: probes });
  const a = buildAdmin({ config, log: createLogger('t', 'silent'), registry: createRegistry({}), ready: () => true, describe: () => ({}), shutdown: () => {} });
  t.teardown(() => a.close());
  t.equal((await a.inject({ url: '/app-health/api/livez' })).statusCode, 200);
  const not = await a.inject({ url: '/app-health/api/readyz' });
  t.equal(not.statusCode, 503);
  t.match(not.body, /NOT_SERVING/);
});

t.test('httpGet probes use the probe timeoutSeconds', async (t) => {
  const server = createHttpServer((_req, res) => void setTimeout(() => res.writeHead(204).end(), 1500));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const probe = (timeoutSeconds?: number) => ({ httpGet: { port, path: '/', scheme: 'HTTP' as const, httpHeaders: [] }, ...(timeoutSeconds ? { timeoutSeconds } : {}) });
  t.match(await runProbe(probe(), '127.0.0.1'), { status: 503, detail: /ETIMEDOUT/ });
  t.match(await runProbe(probe(4), '127.0.0.1'), { status: 204 });
});

t.test('the health messages: encoding and a decoder that skips unknown fields', async (t) => {
  t.same([...encodeHealthCheckRequest('')], [0, 0, 0, 0, 0], 'empty service: an empty message');
  t.same([...encodeHealthCheckRequest('ab')], [0, 0, 0, 0, 4, 0x0a, 2, 0x61, 0x62]);
  t.equal(encodeHealthCheckRequest('x'.repeat(200)).subarray(5, 8).toString('hex'), '0ac801', 'a length over 127 is a two-byte varint');
  const frame = (bytes: number[]) => Buffer.from([0, 0, 0, 0, bytes.length, ...bytes]);
  t.equal(decodeHealthCheckResponse(frame([0x08, 0x01])), SERVING);
  t.equal(decodeHealthCheckResponse(frame([])), 0, 'absent status is UNKNOWN');
  t.equal(decodeHealthCheckResponse(frame([0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x25, 1, 2, 3, 4, 0x08, 0x02])), NOT_SERVING, 'fixed64 and fixed32 fields skipped');
  t.throws(() => decodeHealthCheckResponse(Buffer.from([0, 0, 0, 0, 9, 0x08])), /truncated/);
  t.throws(() => decodeHealthCheckResponse(Buffer.from([1, 0, 0, 0, 0])), /compressed/);
});

t.test('httpGet probes: the app status as kubelet would see it, with its headers, over IPv4 and IPv6', async (t) => {
  const seen: { url: string; host: string; ua: string; custom: string }[] = [];
  const server = createHttpServer((req, res) => {
    seen.push({ url: req.url ?? '', host: req.headers.host ?? '', ua: req.headers['user-agent'] ?? '', custom: String(req.headers['x-probe'] ?? '') });
    const code = Number(/code=(\d+)/.exec(req.url ?? '')?.[1] ?? 200);
    res.writeHead(code, code === 301 ? { location: '/elsewhere' } : {}).end('body that is never read');
  });
  await new Promise<void>((r) => server.listen(0, '::', () => r()));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const probe = (path: string, httpHeaders: { name: string; value: string }[] = []) => ({ httpGet: { port, path, scheme: 'HTTP' as const, httpHeaders } });
  t.match(await runProbe(probe('/healthz?code=200'), '127.0.0.1'), { status: 200 });
  t.match(await runProbe(probe('/healthz?code=503'), '127.0.0.1'), { status: 503, detail: 'http 503' });
  t.match(await runProbe(probe('/healthz?code=301'), '::1'), { status: 301 }, 'a redirect is the app’s answer (kubelet counts < 400 as success)');
  t.match(await runProbe(probe('/h', [{ name: 'Host', value: 'app.local' }, { name: 'X-Probe', value: 'yes' }]), '127.0.0.1'), { status: 200 });
  t.same(seen[0], { url: '/healthz?code=200', host: `127.0.0.1:${port}`, ua: 'kube-probe/weft', custom: '' });
  t.equal(seen[2]?.host, `[::1]:${port}`, 'an IPv6 host is bracketed');
  t.same(seen[3], { url: '/h', host: 'app.local', ua: 'kube-probe/weft', custom: 'yes' }, "the probe's own headers, Host included");
});

t.test('httpGet probes: refused, silent and broken apps', async (t) => {
  const refused = await freePort();
  t.match(await runProbe({ httpGet: { port: refused, path: '/', scheme: 'HTTP', httpHeaders: [] } }, '127.0.0.1'), { status: 503, unreachable: true });
  const { createServer } = await import('node:net');
  const broken = createServer((s) => s.end('SMTP ready\r\n'));
  await new Promise<void>((r) => broken.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => broken.close());
  const port = (broken.address() as { port: number }).port;
  t.match(await runProbe({ httpGet: { port, path: '/', scheme: 'HTTP', httpHeaders: [] } }, '127.0.0.1'), { status: 502, detail: /malformed status line/ });
});
