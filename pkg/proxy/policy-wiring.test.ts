// --controller sends the token read from --token-file, so the injected projected token
// (audience "weft") is what the controller's TokenReview sees.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createLogger } from '../log/index.js';
import { logSink } from '../policy/testing.js';
import { policySource } from './policy-wiring.js';

t.test('the controller stream is authorized with the token from --token-file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wfct-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'projected-weft-token\n');
  const seen: { auth: string | undefined; url: string | undefined }[] = [];
  const server = createServer((req, res) => {
    seen.push({ auth: req.headers.authorization, url: req.url });
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    // A DENY-all policy: visible in decide(), unlike the default.
    res.write(JSON.stringify({ version: 1, policies: [{ ref: 'shop/deny-all', action: 'DENY', rules: [{}] }], peers: {}, defaultInbound: 'allow' }) + '\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const pod = { name: 'api-0', namespace: 'shop', uid: undefined, ips: [], serviceAccount: 'api' };
  const src = await policySource({ controller: url, tokenFile, defaultInboundPolicy: 'allow', pod, log: createLogger('test', 'silent') });
  t.teardown(() => src.close());
  t.equal(seen[0]?.auth, 'Bearer projected-weft-token', 'the bearer token is the file content');
  t.match(seen[0]?.url, /^\/v1\/policy\/watch\?namespace=shop&pod=api-0$/);
  const d = src.authorizer.decide({ direction: 'inbound', source: { address: '10.0.0.1', port: 1234 }, destination: { address: '10.0.0.2', port: 8080 } });
  t.match(d, { allow: false, policy: 'shop/deny-all' }, 'the streamed policy is in force');
});

t.test('every policy source logs its denies (policy name in the log, not the response)', async (t) => {
  const sink = logSink();
  const pod = { name: 'api-0', namespace: 'shop', uid: undefined, ips: [], serviceAccount: 'api' };
  const src = await policySource({ defaultInboundPolicy: 'deny', pod, log: createLogger('proxy', 'info', sink.stream) });
  t.teardown(() => src.close());
  t.match(src.authorizer.decide({ direction: 'inbound', source: { address: '10.0.0.1', port: 1234 }, destination: { address: '10.0.0.2', port: 8080 } }), { allow: false, reason: 'default-deny' });
  t.match(sink.lines(), [{ level: 30, code: 'policy_denied', reason: 'default-deny', src: '10.0.0.1:1234', dst: '10.0.0.2:8080' }]);
});
