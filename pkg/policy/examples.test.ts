// The documented examples stay valid and mean what their comments say.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { authorizerFor, mapResolver } from './eval.js';
import { parsePolicyFile } from './load.js';

const dir = fileURLToPath(new URL('../../../manifests/examples/', import.meta.url));
const load = (f: string) => parsePolicyFile(readFileSync(dir + f, 'utf8'), f).policies;
const peers = mapResolver({ '10.1.0.5': { namespace: 'web', serviceAccount: 'frontend' }, '10.2.0.7': { namespace: 'batch', serviceAccount: 'jobs' }, '10.3.0.1': { namespace: 'shop', serviceAccount: 'cart' } });
const req = (from: string, port: number, http?: { method: string; path: string }) => ({ direction: 'inbound' as const, source: { address: from, port: 1 }, destination: { address: '10.0.0.1', port }, ...(http ? { http } : {}) });

t.test('examples', async (t) => {
  const all = [...load('policy-allow-frontend.yaml'), ...load('policy-deny-batch.yaml')];
  const api = authorizerFor(all, { namespace: 'shop', labels: { app: 'api' }, defaultInbound: 'allow' }, peers);
  t.match(api.decide(req('10.1.0.5', 8080, { method: 'GET', path: '/api/items' })), { allow: true, policy: 'shop/api-allow-frontend', rule: 0 });
  t.match(api.decide(req('10.1.0.5', 8080, { method: 'POST', path: '/api/items' })), { allow: false, reason: 'no-allow-match' });
  t.match(api.decide(req('10.3.0.1', 8080, { method: 'POST', path: '/x' })), { allow: true, rule: 1 });
  t.match(api.decide(req('10.2.0.7', 8080, { method: 'GET', path: '/api/items' })), { allow: false, policy: 'shop/deny-batch', rule: 0 });
  t.match(api.decide(req('10.1.0.5', 8080, { method: 'DELETE', path: '/admin/users' })), { allow: false, policy: 'shop/deny-batch', rule: 1 });
  const nothing = load('policy-allow-nothing.yaml');
  const web = authorizerFor(nothing, { namespace: 'shop', labels: { app: 'web' }, defaultInbound: 'allow' }, peers);
  t.match(web.decide(req('10.3.0.1', 80)), { allow: false, reason: 'no-allow-match' });
  const db = authorizerFor(nothing, { namespace: 'shop', labels: { app: 'db' }, defaultInbound: 'allow' }, peers);
  t.match(db.decide(req('10.3.0.1', 5432)), { allow: true, policy: 'shop/db-from-shop' });
  t.match(db.decide(req('10.1.0.5', 5432)), { allow: false });
});
