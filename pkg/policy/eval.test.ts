import t, { type Test } from 'tap';
import { parsePolicyFile } from './load.js';
import { authorizerFor, mapResolver, type WorkloadSelf } from './eval.js';
import type { AuthzRequest } from './types.js';

const peers = mapResolver({
  '10.1.0.5': { namespace: 'web', serviceAccount: 'frontend' },
  '10.1.0.6': { namespace: 'web', serviceAccount: 'admin' },
  '10.2.0.7': { namespace: 'batch', serviceAccount: 'jobs' },
  'fd00::7': { namespace: 'prod-eu', serviceAccount: 'api' },
});

const self: WorkloadSelf = { namespace: 'shop', name: 'api-0', labels: { app: 'api', tier: 'backend' }, defaultInbound: 'allow' };

function doc(name: string, spec: string, ns = 'shop'): string {
  return `apiVersion: policy.weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec.replace(/^/gm, '  ')}\n---\n`;
}

function req(from: string, port: number, http?: { method: string; path: string }): AuthzRequest {
  return { direction: 'inbound', source: { address: from, port: 40000 }, destination: { address: '10.9.0.1', port }, ...(http ? { http } : {}) };
}
const GET = (path: string) => ({ method: 'GET', path });

type Row = [label: string, request: AuthzRequest, allow: boolean, reason: string, policy?: string, rule?: number];

function table(t: Test, yaml: string, rows: Row[], who: WorkloadSelf = self) {
  const a = authorizerFor(parsePolicyFile(yaml).policies, who, peers);
  for (const [label, r, allow, reason, policy, rule] of rows) {
    const d = a.decide(r);
    t.match(d, { allow, reason, ...(policy ? { policy } : {}), ...(rule !== undefined ? { rule } : {}) }, label);
  }
  return a;
}

t.test('no policy: the pod default decides', async (t) => {
  table(t, '', [['default allow', req('10.1.0.5', 80), true, 'default-allow']]);
  table(t, '', [['default deny', req('10.1.0.5', 80), false, 'default-deny']], { ...self, defaultInbound: 'deny' });
  const other = doc('x', 'selector: {matchLabels: {app: other}}\naction: ALLOW\nrules: [{}]');
  table(t, other, [['policy selecting another pod does not apply', req('10.2.0.7', 80), true, 'default-allow']]);
  const elsewhere = doc('x', 'action: ALLOW\nrules: [{}]', 'other-ns');
  table(t, elsewhere, [['policy in another namespace does not apply', req('10.2.0.7', 80), false, 'default-deny']], { ...self, defaultInbound: 'deny' });
  const a = table(t, '', []);
  t.equal(a.decide({ ...req('10.1.0.5', 80), direction: 'outbound' }).allow, true, 'outbound is never subject to policy');
});

t.test('ALLOW: empty selector selects every pod; a request must match some rule', async (t) => {
  const y = doc('allow-web', 'action: ALLOW\nrules:\n- from: [{source: {namespaces: [web]}}]\n  to: [{operation: {ports: [8080]}}]');
  table(t, y, [
    ['web peer on 8080', req('10.1.0.5', 8080), true, 'allow-policy', 'shop/allow-web', 0],
    ['web peer on another port', req('10.1.0.5', 9090), false, 'no-allow-match'],
    ['batch peer', req('10.2.0.7', 8080), false, 'no-allow-match'],
    ['unknown peer', req('192.168.1.1', 8080), false, 'no-allow-match'],
  ]);
  table(t, doc('nothing', 'action: ALLOW'), [['ALLOW without rules allows nothing', req('10.1.0.5', 80), false, 'no-allow-match']], { ...self, defaultInbound: 'allow' });
  table(t, doc('all', 'action: ALLOW\nrules: [{}]'), [['rules: [{}] allows everything', req('1.2.3.4', 1), true, 'allow-policy', 'shop/all', 0]], { ...self, defaultInbound: 'deny' });
});

t.test('DENY wins over ALLOW; multiple policies', async (t) => {
  const y =
    doc('allow-all', 'action: ALLOW\nrules: [{}]') +
    doc('deny-batch', 'action: DENY\nrules:\n- from: [{source: {namespaces: [batch]}}]') +
    doc('deny-admin', 'selector: {matchLabels: {app: api}}\naction: DENY\nrules:\n- from: [{source: {ipBlocks: [192.168.0.0/16]}}]\n- from: [{source: {serviceAccounts: [web/admin]}}]');
  table(t, y, [
    ['frontend allowed', req('10.1.0.5', 80), true, 'allow-policy', 'shop/allow-all'],
    ['batch denied although allowed', req('10.2.0.7', 80), false, 'deny-policy', 'shop/deny-batch', 0],
    ['admin SA denied by second rule', req('10.1.0.6', 80), false, 'deny-policy', 'shop/deny-admin', 1],
    ['ipBlock denied by first rule', req('192.168.3.4', 80), false, 'deny-policy', 'shop/deny-admin', 0],
  ]);
  table(t, y, [['selector mismatch: deny-admin skipped', req('10.1.0.6', 80), true, 'allow-policy']], { ...self, labels: { app: 'web' } });
});

t.test('not-forms', async (t) => {
  const y =
    doc('deny-outsiders', 'action: DENY\nrules:\n- from: [{source: {notNamespaces: [web, shop]}}]') +
    doc('allow', 'action: ALLOW\nrules:\n- from: [{source: {notServiceAccounts: [web/admin], notIpBlocks: [10.1.0.0/24]}}]\n- to: [{operation: {notPorts: [22], notMethods: [DELETE], notPaths: ["/admin*"]}}]');
  table(t, y, [
    ['batch is outside web/shop', req('10.2.0.7', 80), false, 'deny-policy', 'shop/deny-outsiders'],
    ['unknown peer is "not in" every namespace list', req('172.16.0.1', 80, GET('/')), false, 'deny-policy'],
    ['frontend: excluded by notIpBlocks, rule 1 HTTP ok', req('10.1.0.5', 80, GET('/home')), true, 'allow-policy', 'shop/allow', 1],
    ['frontend: notPaths excludes /admin', req('10.1.0.5', 80, GET('/admin/users')), false, 'no-allow-match'],
    ['frontend: notMethods excludes DELETE', req('10.1.0.5', 80, { method: 'DELETE', path: '/x' }), false, 'no-allow-match'],
    ['frontend: notPorts excludes 22', req('10.1.0.5', 22, GET('/x')), false, 'no-allow-match'],
  ]);
});

t.test('path patterns and methods', async (t) => {
  const y = doc('paths', 'action: ALLOW\nrules:\n- to: [{operation: {methods: [GET, HEAD], paths: [/exact, "/api/*", "*.css"]}}]\n- to: [{operation: {methods: ["*"], paths: ["*"], ports: [9000]}}]');
  table(t, y, [
    ['exact', req('1.1.1.1', 80, GET('/exact')), true, 'allow-policy', 'shop/paths', 0],
    ['exact does not match a longer path', req('1.1.1.1', 80, GET('/exactly')), false, 'no-allow-match'],
    ['query string is not part of the path', req('1.1.1.1', 80, GET('/exact?x=1')), true, 'allow-policy'],
    ['prefix', req('1.1.1.1', 80, GET('/api/v1/users')), true, 'allow-policy'],
    ['suffix', req('1.1.1.1', 80, GET('/static/site.css')), true, 'allow-policy'],
    ['method not listed', req('1.1.1.1', 80, { method: 'POST', path: '/exact' }), false, 'no-allow-match'],
    ['wildcards on port 9000', req('1.1.1.1', 9000, { method: 'PATCH', path: '/anything' }), true, 'allow-policy', 'shop/paths', 1],
  ]);
});

t.test('ipBlocks v4 and v6', async (t) => {
  const y = doc('ips', 'action: ALLOW\nrules:\n- from: [{source: {ipBlocks: [10.0.0.0/8, "fd00::/16", 192.0.2.7]}}]');
  table(t, y, [
    ['v4 inside /8', req('10.200.1.1', 80), true, 'allow-policy'],
    ['v4 outside', req('11.0.0.1', 80), false, 'no-allow-match'],
    ['v4-mapped v6 matches the v4 block', req('::ffff:10.3.3.3', 80), true, 'allow-policy'],
    ['bare address is a /32', req('192.0.2.7', 80), true, 'allow-policy'],
    ['neighbour of bare address', req('192.0.2.8', 80), false, 'no-allow-match'],
    ['v6 inside', req('fd00:0:1::5', 80), true, 'allow-policy'],
    ['v6 outside', req('fd01::5', 80), false, 'no-allow-match'],
    ['namespace of a v6 peer', req('fd00::7', 80), true, 'allow-policy'],
  ]);
  // An IPv4 block written in its IPv4-mapped IPv6 form is that IPv4 block.
  const mapped = doc('mapped', 'action: ALLOW\nrules:\n- from: [{source: {ipBlocks: ["::ffff:10.0.0.0/104", "::ffff:192.0.2.7"]}}]');
  table(t, mapped, [
    ['::ffff:10.0.0.0/104 matches an IPv4 peer in 10/8', req('10.200.1.1', 80), true, 'allow-policy'],
    ['and the same peer seen v4-mapped', req('::ffff:10.200.1.1', 80), true, 'allow-policy'],
    ['but not outside 10/8', req('11.0.0.1', 80), false, 'no-allow-match'],
    ['::ffff:192.0.2.7 is the /32', req('192.0.2.7', 80), true, 'allow-policy'],
    ['not its neighbour', req('192.0.2.8', 80), false, 'no-allow-match'],
  ]);
  const ns = doc('ns-pattern', 'action: ALLOW\nrules:\n- from: [{source: {namespaces: ["prod-*"], serviceAccounts: ["*/api"]}}]');
  table(t, ns, [['namespace prefix + any-namespace SA on a v6 peer', req('fd00::7', 80), true, 'allow-policy']]);
});

t.test('HTTP-only fields against opaque TCP', async (t) => {
  const allowHttp = doc('allow-get', 'action: ALLOW\nrules:\n- to: [{operation: {ports: [8080], methods: [GET]}}]');
  const a = table(t, allowHttp, [
    ['HTTP GET allowed', req('1.1.1.1', 8080, GET('/')), true, 'allow-policy'],
    ['ALLOW with methods never matches opaque TCP', req('1.1.1.1', 8080), false, 'no-allow-match'],
  ]);
  t.equal(a.needsHttp('inbound', 8080), true, 'port 8080 needs HTTP parsing');
  t.equal(a.needsHttp('inbound', 9090), false, 'other ports do not');
  t.equal(a.needsHttp('outbound', 8080), false, 'outbound never');

  const denyHttp = doc('deny-delete', 'action: DENY\nrules:\n- from: [{source: {namespaces: [batch]}}]\n  to: [{operation: {ports: [8080], methods: [DELETE]}}]');
  table(t, denyHttp, [
    ['HTTP GET from batch passes the DENY', req('10.2.0.7', 8080, GET('/')), true, 'default-allow'],
    ['HTTP DELETE from batch denied', req('10.2.0.7', 8080, { method: 'DELETE', path: '/' }), false, 'deny-policy'],
    ['opaque TCP from batch: a rule with HTTP fields never matches TCP', req('10.2.0.7', 8080), true, 'default-allow'],
    ['opaque TCP from web', req('10.1.0.5', 8080), true, 'default-allow'],
    ['opaque TCP on another port', req('10.2.0.7', 9090), true, 'default-allow'],
  ]);

  // The documented way to deny a port at L4: a rule without HTTP fields, next to the HTTP one.
  const denyPort = doc('deny-delete', 'action: DENY\nrules:\n- from: [{source: {namespaces: [batch]}}]\n  to: [{operation: {ports: [8080], methods: [DELETE]}}]') + doc('deny-5432', 'action: DENY\nrules:\n- from: [{source: {namespaces: [batch]}}]\n  to: [{operation: {ports: [5432]}}]');
  table(t, denyPort, [
    ['opaque TCP to the L4-denied port', req('10.2.0.7', 5432), false, 'deny-policy', 'shop/deny-5432', 0],
    ['HTTP to the L4-denied port: denied too (no HTTP fields: every request)', req('10.2.0.7', 5432, GET('/')), false, 'deny-policy', 'shop/deny-5432', 0],
    ['opaque TCP to 8080 still passes the HTTP-only DENY', req('10.2.0.7', 8080), true, 'default-allow'],
  ]);

  // One operation with HTTP fields and one without, in the same DENY rule: TCP meets the second.
  const mixed = doc('mixed', 'action: DENY\nrules:\n- to: [{operation: {ports: [8080], paths: ["/admin*"]}}, {operation: {ports: [8081]}}]');
  table(t, mixed, [
    ['TCP to 8080: only the HTTP operation applies', req('1.1.1.1', 8080), true, 'default-allow'],
    ['TCP to 8081: the plain operation denies', req('1.1.1.1', 8081), false, 'deny-policy', 'shop/mixed', 0],
  ]);
});

t.test('serviceAccounts without a namespace mean the policy namespace', async (t) => {
  const local = mapResolver({ '10.0.0.1': { namespace: 'shop', serviceAccount: 'cart' }, '10.0.0.2': { namespace: 'web', serviceAccount: 'cart' } });
  const a = authorizerFor(parsePolicyFile(doc('sa', 'action: ALLOW\nrules:\n- from: [{source: {serviceAccounts: [cart]}}]')).policies, self, local);
  t.equal(a.decide(req('10.0.0.1', 80)).allow, true, 'shop/cart allowed');
  t.equal(a.decide(req('10.0.0.2', 80)).allow, false, 'web/cart is another identity');
});
