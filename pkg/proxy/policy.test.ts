// Policy enforcement through the proxy with a fake Authorizer: an L4 deny is an RST before
// the upstream sees anything; an HTTP deny is a 403 on a connection that stays usable.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import type { Authorizer, AuthzRequest } from '../policy/types.js';
import { dial, dialAndRead, listen, readAll, startTestProxy } from './test-support.js';

t.test('L4 deny: the client gets an RST and the upstream never sees a connection', async (t) => {
  const server = await listen((s) => s.end('should not happen'));
  t.teardown(() => server.close());
  const asked: AuthzRequest[] = [];
  const authorizer: Authorizer = {
    decide: (r) => (asked.push(r), { allow: false, reason: 'deny-policy', policy: 'shop/deny-all' }),
    needsHttp: () => false,
  };
  const tp = await startTestProxy({}, { authorizer });
  t.teardown(() => tp.close());
  tp.dst = { address: '127.0.0.1', port: server.port };
  const r = await dialAndRead(tp.inbound, 'GET / HTTP/1.1\r\n\r\n');
  t.equal(r.error, 'ECONNRESET');
  t.equal(r.data.length, 0);
  await new Promise((r) => setTimeout(r, 50));
  t.equal(server.accepted(), 0, 'upstream never connected');
  t.match(asked[0], { direction: 'inbound', destination: { address: '127.0.0.1', port: server.port } });
  t.notOk(asked[0]?.http, 'connection-level decision has no http fields');
  t.equal(await tp.metric('weft_authz_decisions_total', { direction: 'inbound', decision: 'deny', policy: 'shop/deny-all' }), 1);
  t.equal(await tp.metric('weft_tcp_connection_failures_total', { reason: 'policy_denied' }), 1);
});

t.test('HTTP deny: 403 without the policy name, and the same connection serves the next allowed request', async (t) => {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.end(`ok ${req.url}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const authorizer: Authorizer = {
    decide: (r) => (r.http?.path.startsWith('/admin') ? { allow: false, reason: 'deny-policy', policy: 'shop/no-admin' } : { allow: true, reason: 'allow-policy', policy: 'shop/no-admin' }),
    needsHttp: (dir) => dir === 'inbound',
  };
  const tp = await startTestProxy({}, { authorizer });
  t.teardown(() => tp.close());
  tp.dst = { address: '127.0.0.1', port: (server.address() as { port: number }).port };
  const c = await dial(tp.inbound);
  const all = readAll(c);
  c.write('GET /ok1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /admin/x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody');
  await new Promise((r) => setTimeout(r, 100));
  c.end('GET /ok2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const text = (await all).data.toString();
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
  t.same(statuses, ['200', '403', '200'], 'responses in request order');
  t.match(text, /RBAC: access denied/);
  t.notMatch(text, /shop\/no-admin/, 'the policy name is not disclosed');
  t.same(seen, ['GET /ok1', 'GET /ok2'], 'the denied request never reached the app');
  t.equal(await tp.metric('weft_authz_decisions_total', { direction: 'inbound', decision: 'deny' }), 1);
  t.equal(await tp.metric('weft_authz_decisions_total', { direction: 'inbound', decision: 'allow' }), 2);
  t.equal(await tp.metric('weft_requests_total', { response_code: '403', method: 'POST' }), 1);
});

t.test('--policy-file: the real policy engine decides per request', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wfpx-policy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'policy.yaml');
  writeFileSync(
    file,
    `peers:
  127.0.0.1: web/frontend
---
apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: shop}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin"]}}]
`,
  );
  const server = createServer((req, res) => res.end(`ok ${req.url}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const tp = await startTestProxy({ policyFile: file }, { pod: { namespace: 'shop', name: 'web-0' } });
  t.teardown(() => tp.close());
  tp.dst = { address: '127.0.0.1', port: (server.address() as { port: number }).port };
  const c = await dial(tp.inbound);
  const all = readAll(c);
  c.end('GET /admin HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const text = (await all).data.toString();
  t.same([...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]), ['403', '200']);
  t.equal(await tp.metric('weft_authz_decisions_total', { decision: 'deny', policy: 'shop/no-admin' }), 1);
});

t.test('--policy-file with --pod-labels: a matchLabels selector applies only to a pod with those labels', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wfpe-labels-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'policy.yaml');
  writeFileSync(
    file,
    `apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: deny-web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  action: DENY
  rules: [{}]
`,
  );
  const server = await listen((s) => s.end('hello'));
  t.teardown(() => server.close());
  const reply = async (podLabels: Record<string, string>) => {
    const tp = await startTestProxy({ policyFile: file, podLabels }, { pod: { namespace: 'shop', name: 'p' } });
    try {
      tp.dst = { address: '127.0.0.1', port: server.port };
      const c = connect({ host: '127.0.0.1', port: tp.inbound });
      c.end('x');
      return (await readAll(c)).data.toString();
    } finally {
      await tp.close();
    }
  };
  t.equal(await reply({ app: 'web', tier: 'front' }), '', 'the selected pod refuses the connection');
  t.equal(await reply({ app: 'api' }), 'hello', 'a pod with other labels is not selected');
  t.equal(server.accepted(), 1, 'only the unselected pod reached the upstream');
});
