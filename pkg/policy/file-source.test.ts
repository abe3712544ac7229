import t from 'tap';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../log/index.js';
import { createRegistry } from '../metrics/registry.js';
import { watchPolicyFile } from './file-source.js';
import type { AuthzRequest, Authorizer } from './types.js';

const dir = mkdtempSync(join(tmpdir(), 'wfpo-file-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const lines: string[] = [];
const log = createLogger('test', 'info', new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));

const policy = (action: 'ALLOW' | 'DENY', path = '/ok') => `peers:
  10.1.0.5: web/frontend
---
apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: p, namespace: shop}
spec:
  action: ${action}
  rules:
  - from: [{source: {namespaces: [web]}}]
    to: [{operation: {paths: ["${path}"]}}]
`;

const req: AuthzRequest = { direction: 'inbound', source: { address: '10.1.0.5', port: 1 }, destination: { address: '10.9.9.9', port: 80 }, http: { method: 'GET', path: '/ok' } };

async function until(a: Authorizer, allow: boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (a.decide(req).allow === allow) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

t.test('reloads on change, keeps the last good policy on a bad file', async (t) => {
  const file = join(dir, 'policies.yaml');
  writeFileSync(file, policy('ALLOW'));
  const registry = createRegistry();
  const src = await watchPolicyFile(file, { namespace: 'shop', labels: {}, defaultInbound: 'deny' }, log, { registry });
  t.teardown(() => src.close());
  t.match(src.authorizer.decide(req), { allow: true, policy: 'shop/p', rule: 0 }, 'initial ALLOW applies, peers: resolves the namespace');
  t.equal(src.authorizer.needsHttp('inbound', 80), true, 'paths make the port HTTP');

  writeFileSync(file, policy('DENY'));
  t.ok(await until(src.authorizer, false), 'an in-place write flips the decision within 2 s');
  t.match(src.authorizer.decide(req), { reason: 'deny-policy' });

  writeFileSync(file, policy('ALLOW', '/a*b'));
  await new Promise((r) => setTimeout(r, 1500));
  t.match(src.authorizer.decide(req), { allow: false, reason: 'deny-policy' }, 'an invalid file keeps the last good policy');
  t.ok(lines.some((l) => l.includes('WEFT_ERR_BAD_POLICY') && l.includes('spec.rules[0].to[0].operation.paths[0]')), 'the bad field is logged');
  t.match(await registry.metrics(), /weft_policy_updates_total\{source="file",result="error"\} 1/);

  // ConfigMap-style replace: write elsewhere, rename over.
  writeFileSync(join(dir, 'tmp.yaml'), policy('ALLOW'));
  renameSync(join(dir, 'tmp.yaml'), file);
  t.ok(await until(src.authorizer, true), 'a rename over the file is picked up within 2 s');
});

t.test('a bad file at start-up is an error naming the field', async (t) => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, policy('ALLOW').replace('action: ALLOW', 'action: MAYBE'));
  await t.rejects(watchPolicyFile(file, { namespace: 'shop', labels: {}, defaultInbound: 'allow' }, log), { code: 'WEFT_ERR_BAD_POLICY', message: /spec\.action: must be ALLOW or DENY/ });
  await t.rejects(watchPolicyFile(join(dir, 'missing.yaml'), { namespace: 'shop', labels: {}, defaultInbound: 'allow' }, log), { code: 'WEFT_ERR_BAD_CONFIG' });
});
