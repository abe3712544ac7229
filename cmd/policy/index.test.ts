import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'wfpo-check-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const policies = `peers:
  10.1.0.5: web/frontend
  10.2.0.7: batch/jobs
---
apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: api-allow, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  action: ALLOW
  rules:
  - from: [{source: {namespaces: [web]}}]
    to: [{operation: {ports: [8080], methods: [GET], paths: ["/api/*"]}}]
---
apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: deny-batch, namespace: shop}
spec:
  action: DENY
  rules:
  - from: [{source: {namespaces: [batch]}}]
`;
const file = join(dir, 'p.yaml');
writeFileSync(file, policies);

const weft = (...args: string[]) => spawnSync(process.execPath, [main, 'policy', 'check', '-f', file, ...args], { encoding: 'utf8', env: { ...process.env, WEFT_FROM: '' } });

t.test('allow exits 0 and names the policy and rule', async (t) => {
  const r = weft('--from', 'web/frontend', '--to', 'shop/api-0:8080', '--labels', 'app=api', '--method', 'GET', '--path', '/api/items');
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^ALLOW web\/frontend \(10\.1\.0\.5\) -> shop\/api-0:8080 GET \/api\/items/);
  t.match(r.stdout, /policy: shop\/api-allow {2}rule: 0/);
});

t.test('deny exits 1 with the deciding policy; JSON output', async (t) => {
  const r = weft('--from', '10.2.0.7', '--to', 'shop/api-0:8080', '--labels', 'app=api', '--json');
  t.equal(r.status, 1, r.stderr);
  t.match(JSON.parse(r.stdout), { decision: { allow: false, reason: 'deny-policy', policy: 'shop/deny-batch', rule: 0 } });
  const tcp = weft('--from', 'web/frontend@10.1.0.5', '--to', 'shop/api-0:8080', '--labels', 'app=api');
  t.equal(tcp.status, 1, 'ALLOW with HTTP fields does not allow opaque TCP');
  t.match(tcp.stdout, /reason: no-allow-match/);
  const other = weft('--from', '10.1.0.5', '--to', 'shop/db-0:5432', '--labels', 'app=db');
  t.equal(other.status, 0, 'a pod no ALLOW policy selects falls back to its default');
  t.match(other.stdout, /default-allow/);
});

t.test('bad input exits 2 naming the field', async (t) => {
  writeFileSync(join(dir, 'bad.yaml'), policies.replace('"/api/*"', '"/a*b"'));
  const r = spawnSync(process.execPath, [main, 'policy', 'check', '-f', join(dir, 'bad.yaml'), '--from', '1.2.3.4', '--to', 'shop/a:80'], { encoding: 'utf8' });
  t.equal(r.status, 2);
  t.match(r.stderr, /WEFT_ERR_BAD_POLICY: .*document 2 \(AuthorizationPolicy shop\/api-allow\): spec\.rules\[0\]\.to\[0\]\.operation\.paths\[0\]: must start with/);
  const f = weft('--from', 'nope', '--to', 'shop/a:80');
  t.equal(f.status, 2);
  t.match(f.stderr, /--from: "nope" is not an IP address/);
  const y = spawnSync(process.execPath, [main, 'policy', 'check', '-f', '-', '--from', '1.2.3.4', '--to', 'shop/a:80'], { encoding: 'utf8', input: 'spec: [a\n' });
  t.equal(y.status, 2);
  t.match(y.stderr, /WEFT_ERR_BAD_INPUT: stdin document 1: invalid YAML/);
});
