// Denies are logged at info with the policy and rule, rate-limited with a suppressed count.
import t from 'tap';
import { createLogger } from '../log/index.js';
import { withDenyLog } from './decision-log.js';
import { createAuthorizer } from './eval.js';
import { logSink } from './testing.js';
import type { AuthzRequest } from './types.js';

const inner = createAuthorizer(
  [
    { ref: 'shop/no-admin', action: 'DENY', rules: [{ to: [{ operation: { ports: [8080] } }] }, { to: [{ operation: { paths: ['/admin*'] } }] }] },
    { ref: 'shop/allow-all', action: 'ALLOW', rules: [{}] },
  ],
  { defaultInbound: 'allow' },
);
const req = (port: number, path?: string): AuthzRequest => ({ direction: 'inbound', source: { address: '10.1.0.5', port: 4000 }, destination: { address: '10.0.0.1', port }, ...(path ? { http: { method: 'GET', path } } : {}) });

t.test('a deny is one info line naming policy and rule; allows are not logged', async (t) => {
  const sink = logSink();
  const a = withDenyLog(inner, createLogger('proxy', 'info', sink.stream));
  t.match(a.decide(req(9090, '/admin/x')), { allow: false, policy: 'shop/no-admin', rule: 1 }, 'the decision is unchanged');
  t.match(a.decide(req(9090, '/ok')), { allow: true });
  t.equal(a.needsHttp('inbound', 9090), true, 'needsHttp passes through');
  const lines = sink.lines();
  t.equal(lines.length, 1);
  t.match(lines[0], { level: 30, dir: 'inbound', src: '10.1.0.5:4000', dst: '10.0.0.1:9090', code: 'policy_denied', reason: 'deny-policy', policy: 'shop/no-admin', rule: 1, method: 'GET', path: '/admin/x', msg: 'denied by policy shop/no-admin rule 1' });
});

t.test('rate limit: a burst per window, then a count of what was left out', async (t) => {
  const sink = logSink();
  let clock = 0;
  const a = withDenyLog(inner, createLogger('proxy', 'info', sink.stream), { burst: 3, windowMs: 1000, now: () => clock });
  for (let i = 0; i < 50; i++) a.decide(req(8080));
  t.equal(sink.lines().length, 3, '50 denies in one window: 3 lines');
  clock = 1000;
  a.decide(req(8080));
  const last = sink.lines().at(-1);
  t.match(last, { policy: 'shop/no-admin', rule: 0, suppressed: 47 }, 'the next window reports the 47 left out');
  clock = 2000;
  a.decide(req(8080));
  t.notOk('suppressed' in (sink.lines().at(-1) ?? {}), 'and only once');
});
