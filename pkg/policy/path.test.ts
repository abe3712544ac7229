// Path normalization before policy: the table of bypass attempts a DENY "/admin*" must
// catch, what is left alone, and the ambiguous paths that fail closed.
import t from 'tap';
import { checkRequest, formatDecision } from './check.js';
import { authorizerFor } from './eval.js';
import { parsePolicyFile } from './load.js';
import { normalizePath } from './path.js';

t.test('normalizePath', async (t) => {
  const rows: [target: string, path: string, ambiguous: boolean][] = [
    ['/admin', '/admin', false],
    ['/x/../admin', '/admin', false],
    ['//admin', '/admin', false],
    ['/%61dmin', '/admin', false],
    ['/./admin', '/admin', false],
    ['/admin/./users/../', '/admin/', false],
    ['/%2e%2E/admin', '/admin', false],
    ['/x/%2e%2e/admin', '/admin', false],
    ['/../../admin', '/admin', false],
    ['/a/..', '/', false],
    ['http://web.shop:8080/admin?x=1', '/admin', false],
    ['HTTPS://web/x/../admin', '/admin', false],
    ['http://web', '/', false],
    ['http://web?q', '/', false],
    ['/admin?next=/../x#frag', '/admin', false],
    ['/caf%c3%a9', '/caf%C3%A9', false],
    ['/a%20b%3bc', '/a%20b%3Bc', false],
    ['/%7Euser', '/~user', false],
    ['*', '*', false],
    // Fail closed: no safe answer.
    ['/admin%2fusers', '/admin%2Fusers', true],
    ['/x%2F..%2Fadmin', '/x%2F..%2Fadmin', true],
    ['/x%5c..%5cadmin', '/x%5C..%5Cadmin', true],
    ['/x\\..\\admin', '/x\\..\\admin', true],
    ['/bad%zzescape', '/bad%zzescape', true],
    ['/trailing%4', '/trailing%4', true],
    ['admin', '/admin', true],
    ['/a//../admin', '/admin', true],
  ];
  for (const [target, path, ambiguous] of rows) t.same(normalizePath(target), { path, ambiguous }, JSON.stringify(target));
});

const policies = parsePolicyFile(`apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: shop}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
---
apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: public-only, namespace: shop}
spec:
  action: ALLOW
  rules: [{to: [{operation: {paths: ["/public/*", "/admin*"]}}]}]
`).policies;

t.test('the proxy decision: every spelling of /admin is denied, ambiguous paths fail closed', async (t) => {
  const a = authorizerFor(policies, { namespace: 'shop', labels: {}, defaultInbound: 'allow' });
  const decide = (path: string) => a.decide({ direction: 'inbound', source: { address: '10.1.0.5', port: 1 }, destination: { address: '10.0.0.1', port: 8080 }, http: { method: 'GET', path } });
  for (const p of ['/admin', '/x/../admin', '//admin', '/%61dmin', '/./admin', 'http://web.shop/admin', '/%2e%2e/admin/users', '/public/../admin']) {
    t.match(decide(p), { allow: false, reason: 'deny-policy', policy: 'shop/no-admin' }, `DENY /admin*: ${p}`);
  }
  t.match(decide('/public/a.css'), { allow: true, reason: 'allow-policy' }, 'a normal allowed path');
  t.match(decide('/public/x/../y.css?v=1'), { allow: true, policy: 'shop/public-only' }, 'normalized, still allowed');
  t.match(decide('/public%2F..%2Fadmin'), { allow: false, reason: 'deny-policy', policy: 'shop/no-admin' }, 'encoded "/": the DENY path rule counts as matched');
  // Without the DENY, the ALLOW rule's path conditions count as not matched.
  const allowOnly = authorizerFor(policies.filter((p) => p.name === 'public-only'), { namespace: 'shop', labels: {}, defaultInbound: 'allow' });
  const d = allowOnly.decide({ direction: 'inbound', source: { address: '10.1.0.5', port: 1 }, destination: { address: '10.0.0.1', port: 8080 }, http: { method: 'GET', path: '/public/x%2f..%2f..%2fsecret' } });
  t.match(d, { allow: false, reason: 'no-allow-match' }, 'encoded "/": an ALLOW path rule does not admit it');
});

t.test('weft policy check normalizes the same way', async (t) => {
  const r = checkRequest({ policies, peers: {} }, { from: '10.1.0.5', to: 'shop/api-0:8080', http: { method: 'GET', path: '/x/../%61dmin' }, labels: '', defaultInbound: 'allow' });
  t.match(r.decision, { allow: false, policy: 'shop/no-admin' });
  t.match(formatDecision(r), /^DENY 10\.1\.0\.5 -> shop\/api-0:8080 GET \/x\/\.\.\/%61dmin \(matched as \/admin\)/);
});
