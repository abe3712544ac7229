import t from 'tap';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../log/index.js';
import { createRegistry } from '../metrics/registry.js';
import { subscribePolicy } from './controller-source.js';
import type { CompiledPolicy } from './eval.js';
import { logSink } from './testing.js';
import type { AuthzRequest } from './types.js';

const log = createLogger('test', 'silent');
const dir = mkdtempSync(join(tmpdir(), 'wfpo-src-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const denyAll: CompiledPolicy = { ref: 'shop/deny-all', action: 'DENY', rules: [{}] };
const allowWeb: CompiledPolicy = { ref: 'shop/allow-web', action: 'ALLOW', rules: [{ from: [{ source: { namespaces: ['web'] } }] }] };
const req: AuthzRequest = { direction: 'inbound', source: { address: '10.1.0.5', port: 1 }, destination: { address: '10.0.0.1', port: 80 } };

t.test('reconnects with a fresh token, keeps the last good policy, reports staleness', async (t) => {
  const tokens: string[] = [];
  const queries: string[] = [];
  let connection = 0;
  const server = http.createServer((rq, res) => {
    tokens.push(rq.headers.authorization ?? '');
    queries.push(rq.url ?? '');
    connection++;
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    if (connection === 1) {
      // One snapshot, a malformed line, then the connection drops.
      res.write(JSON.stringify({ version: 1, policies: [denyAll], peers: {} }) + '\n');
      res.end('{"version": 2, "policies": "nope"}\n');
    } else {
      res.write(JSON.stringify({ version: 3, policies: [allowWeb], peers: { '10.1.0.5': { namespace: 'web', serviceAccount: 'frontend' } } }) + '\n');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const tokenPath = join(dir, 'token');
  writeFileSync(tokenPath, 'first');
  const registry = createRegistry();
  const src = await subscribePolicy(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, tokenPath, { namespace: 'shop', name: 'api-0', labels: {}, defaultInbound: 'allow' }, log, {
    registry,
    backoffMs: { initial: 300, max: 300 },
  });
  t.teardown(async () => {
    await src.close();
    server.closeAllConnections();
    server.close();
  });
  t.equal(connection, 1, 'connected once so far');
  t.match(src.authorizer.decide(req), { allow: false, policy: 'shop/deny-all' }, 'first snapshot applied before subscribePolicy resolved');
  writeFileSync(tokenPath, 'rotated');
  const end = Date.now() + 3000;
  while (src.authorizer.decide(req).policy !== 'shop/allow-web' && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  t.match(src.authorizer.decide(req), { allow: true, reason: 'allow-policy', policy: 'shop/allow-web' }, 'reconnected and applied the next snapshot with its peers');
  t.same(tokens.slice(0, 2), ['Bearer first', 'Bearer rotated'], 'token re-read at each connect');
  t.match(queries[0], /namespace=shop&pod=api-0/);
  const text = await registry.metrics();
  t.match(text, /weft_policy_updates_total\{source="controller",result="error"\} 1/, 'the bad line was counted and skipped');
  t.match(text, /weft_policy_staleness_seconds\{source="controller"\} \d/);
});

t.test('a controller that is down: default policy until it answers', async (t) => {
  const tokenPath = join(dir, 'token2');
  writeFileSync(tokenPath, 'x');
  const started = Date.now();
  const src = await subscribePolicy('http://127.0.0.1:9', tokenPath, { namespace: 'shop', labels: {}, defaultInbound: 'deny' }, log, { initialWaitMs: 300, backoffMs: { initial: 50, max: 100 } });
  t.teardown(() => src.close());
  t.ok(Date.now() - started < 3000, 'resolves without a controller');
  t.match(src.authorizer.decide(req), { allow: false, reason: 'default-deny' });
});

t.test('a silent stream is presumed half-open: torn down and reconnected; keepalives keep it', async (t) => {
  let connections = 0;
  const keepalive = new Set<NodeJS.Timeout>();
  // Connection 1 goes silent after its snapshot (a peer that vanished without a FIN looks
  // exactly like this); connection 2 sends keepalives, so it must stay up.
  const server = http.createServer((_rq, res) => {
    const n = ++connections;
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(JSON.stringify({ version: n, policies: n === 1 ? [denyAll] : [allowWeb], peers: { '10.1.0.5': { namespace: 'web', serviceAccount: 'frontend' } } }) + '\n');
    if (n > 1) {
      const i = setInterval(() => res.write('\n'), 100);
      keepalive.add(i);
      res.on('close', () => clearInterval(i));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const i of keepalive) clearInterval(i);
    server.closeAllConnections();
    server.close();
  });
  const tokenPath = join(dir, 'token3');
  writeFileSync(tokenPath, 'x');
  const sink = logSink();
  const src = await subscribePolicy(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, tokenPath, { namespace: 'shop', labels: {} }, createLogger('test', 'info', sink.stream), {
    idleTimeoutMs: 400,
    backoffMs: { initial: 50, max: 50 },
  });
  t.teardown(() => src.close());
  t.match(src.authorizer.decide(req), { policy: 'shop/deny-all' });
  const end = Date.now() + 5000;
  while (connections < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  t.equal(connections, 2, 'reconnected after the silence');
  t.ok(sink.lines().some((l) => /no data from the controller for 400 ms/.test(String(l.err))), 'the reason is logged');
  while (src.authorizer.decide(req).policy !== 'shop/allow-web' && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  t.match(src.authorizer.decide(req), { policy: 'shop/allow-web' }, 'the new stream delivered its snapshot');
  await new Promise((r) => setTimeout(r, 1200));
  t.equal(connections, 2, 'a stream that sends keepalives is kept (3 idle periods passed)');
});

t.test('staleness and connection state are exported before the controller is ever reached', async (t) => {
  const tokenPath = join(dir, 'token4');
  writeFileSync(tokenPath, 'x');
  const registry = createRegistry();
  const src = await subscribePolicy('http://127.0.0.1:9', tokenPath, { namespace: 'shop', labels: {} }, log, { registry, initialWaitMs: 1100, backoffMs: { initial: 50, max: 100 } });
  t.teardown(() => src.close());
  const text = await registry.metrics();
  const stale = Number(/weft_policy_staleness_seconds\{source="controller"\} ([\d.]+)/.exec(text)?.[1]);
  t.ok(stale >= 1, `stale since start (${stale} s), not absent`);
  t.match(text, /weft_policy_stream_connected\{source="controller"\} 0/);
});
