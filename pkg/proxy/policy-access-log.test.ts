// Access-log entries name the deciding policy (for operators); the client never sees it.
import { createServer } from 'node:http';
import t from 'tap';
import type { Authorizer } from '../policy/types.js';
import { dial, dialAndRead, listen, readAll, startTestProxy } from './test-support.js';

t.test('access log: policy on L4 denies, on allowed connections and on each HTTP request', async (t) => {
  const server = createServer((req, res) => res.end(`ok ${req.url}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const rawServer = await listen((s) => s.end('raw'));
  t.teardown(() => rawServer.close());
  const entries: Record<string, unknown>[] = [];
  const authorizer: Authorizer = {
    decide: (r) => {
      if (r.destination.port === rawServer.port) return { allow: false, reason: 'deny-policy', policy: 'shop/deny-raw', rule: 0 };
      if (!r.http) return { allow: true, reason: 'allow-policy', policy: 'shop/allow-l4', rule: 0 };
      return r.http.path.startsWith('/admin') ? { allow: false, reason: 'deny-policy', policy: 'shop/no-admin', rule: 2 } : { allow: true, reason: 'allow-policy', policy: 'shop/allow-api', rule: 1 };
    },
    needsHttp: (_dir, p) => p === port,
  };
  const tp = await startTestProxy({}, { authorizer, accessLog: (rec) => entries.push(rec) });
  t.teardown(() => tp.close());

  tp.dst = { address: '127.0.0.1', port: rawServer.port };
  t.equal((await dialAndRead(tp.inbound, 'x')).error, 'ECONNRESET', 'L4 deny');
  tp.dst = { address: '127.0.0.1', port };
  const c = await dial(tp.inbound);
  const all = readAll(c);
  c.end('GET /api HTTP/1.1\r\nHost: x\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const text = (await all).data.toString();
  t.match(text, /RBAC: access denied/);
  t.notMatch(text, /shop\//, 'no policy name reaches the client');
  const end = Date.now() + 3000;
  while (entries.length < 4 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  t.match(entries.find((e) => e.status === 'policy_denied'), { proto: 'tcp', policy: 'shop/deny-raw' }, 'the refused connection');
  t.match(entries.find((e) => e.path === '/api'), { proto: 'http', status: 200, policy: 'shop/allow-api' });
  t.match(entries.find((e) => e.path === '/admin'), { proto: 'http', status: 403, policy: 'shop/no-admin' });
});
