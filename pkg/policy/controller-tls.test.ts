// The proxy's controller stream against the real policy server over HTTPS, its certificate
// signed by a private CA as the chart's is: verification is on, the right CA connects, a
// wrong CA (or none: the system store) is refused with a log line that says what to fix.
import t from 'tap';
import Fastify from 'fastify';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../log/index.js';
import { createRegistry } from '../metrics/registry.js';
import { policySource } from '../proxy/policy-wiring.js';
import { subscribePolicy } from './controller-source.js';
import { policyPlugin } from './server.js';
import { PolicyStore } from './store.js';
import { haveOpenssl, logSink, makePki } from './testing.js';
import type { AuthzRequest } from './types.js';

const req: AuthzRequest = { direction: 'inbound', source: { address: '10.1.0.5', port: 1 }, destination: { address: '10.0.0.1', port: 80 } };
const pod = { namespace: 'shop', name: 'api-0', labels: { app: 'api' }, defaultInbound: 'allow' as const };

t.test('controller stream over HTTPS with a private CA', { skip: haveOpenssl() ? false : 'openssl CLI not available' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wfpo-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pki = makePki(dir, 'chart');
  const other = makePki(dir, 'other');
  const tokenPath = join(dir, 'token');
  writeFileSync(tokenPath, 'api-0-token');

  const store = new PolicyStore();
  store.upsertPod({ metadata: { name: 'api-0', namespace: 'shop', labels: { app: 'api' } }, spec: { serviceAccountName: 'api' }, status: { podIP: '10.0.0.1' } });
  store.upsertPolicy({ apiVersion: 'policy.weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'deny-all', namespace: 'shop' }, spec: { action: 'DENY', rules: [{}] } });
  const tokenReviewer = {
    review: async (token: string) =>
      token === 'api-0-token' ? { authenticated: true, username: 'system:serviceaccount:shop:api', extra: { 'authentication.kubernetes.io/pod-name': ['api-0'] }, audiences: ['weft'] } : { authenticated: false },
  };
  const app = Fastify({ https: { cert: pki.cert, key: pki.key } });
  await app.register(policyPlugin, { store, tokenReviewer, keepaliveMs: 60_000 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(() => app.close());
  const url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  t.test('the CA that signed the server: the snapshot arrives over verified TLS', async (t) => {
    const src = await subscribePolicy(url, tokenPath, pod, createLogger('test', 'silent'), { ca: pki.ca, initialWaitMs: 5000 });
    t.teardown(() => src.close());
    t.match(src.authorizer.decide(req), { allow: false, reason: 'deny-policy', policy: 'shop/deny-all' });
  });

  t.test('a wrong CA: no connection, the default applies, the log says the CA does not match', async (t) => {
    const sink = logSink();
    const registry = createRegistry();
    const src = await subscribePolicy(url, tokenPath, pod, createLogger('test', 'info', sink.stream), { ca: other.ca, initialWaitMs: 500, backoffMs: { initial: 50, max: 100 }, registry });
    t.teardown(() => src.close());
    t.match(src.authorizer.decide(req), { allow: true, reason: 'default-allow' }, 'the streamed DENY never arrived');
    const errs = sink.lines().filter((l) => l.level === 50);
    t.ok(errs.length > 0, 'an error was logged');
    t.match(errs[0], { tls: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', msg: /is not signed by the --controller-ca CA/ });
    t.match(await registry.metrics(), /weft_policy_stream_connected\{source="controller"\} 0/);
  });

  t.test('no CA given: the system CAs do not trust the private CA', async (t) => {
    const sink = logSink();
    const src = await subscribePolicy(url, tokenPath, pod, createLogger('test', 'info', sink.stream), { initialWaitMs: 500, backoffMs: { initial: 50, max: 100 } });
    t.teardown(() => src.close());
    t.match(src.authorizer.decide(req), { reason: 'default-allow' });
    t.match(sink.lines().find((l) => l.level === 50), { msg: /not trusted by the system CAs.*--controller-ca FILE or WEFT_CONTROLLER_CA_PEM/ });
  });

  t.test('the proxy wiring: --controller-ca FILE and --controller-ca-pem', async (t) => {
    const caFile = join(dir, 'ca.crt');
    writeFileSync(caFile, pki.ca);
    const proxyPod = { name: 'api-0', namespace: 'shop', uid: undefined, ips: [], serviceAccount: 'api' };
    const log = createLogger('test', 'silent');
    for (const ca of [{ controllerCa: caFile }, { controllerCaPem: pki.ca }]) {
      const s = await policySource({ controller: url, tokenFile: tokenPath, ...ca, defaultInboundPolicy: 'allow', pod: proxyPod, log });
      t.match(s.authorizer.decide(req), { allow: false, policy: 'shop/deny-all' }, `verified with ${Object.keys(ca)[0]}`);
      await s.close();
    }
    await t.rejects(policySource({ controller: url, tokenFile: tokenPath, controllerCa: join(dir, 'missing.crt'), defaultInboundPolicy: 'allow', pod: proxyPod, log }), {
      code: 'WEFT_ERR_BAD_FLAG',
      message: /--controller-ca: cannot read .*missing\.crt: ENOENT/,
    });
    await t.rejects(policySource({ controller: url, tokenFile: tokenPath, controllerCa: tokenPath, defaultInboundPolicy: 'allow', pod: proxyPod, log }), { message: /holds no PEM certificate/ });
  });
});
