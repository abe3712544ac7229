// The controller path end to end, without a cluster: a test API server speaking list/watch
// → startPolicyController → PolicyStore → policyPlugin's GET /v1/policy/watch → a proxy's
// subscribePolicy authorizer.
import t from 'tap';
import Fastify from 'fastify';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeHttpFor } from '../k8s/client.js';
import { TestApiServer } from '../k8s/testserver.js';
import { createLogger } from '../log/index.js';
import { NAMESPACES_PATH, PODS_PATH, POLICIES_PATH, startPolicyController } from './controller.js';
import { subscribePolicy } from './controller-source.js';
import { policyPlugin } from './server.js';
import { PolicyStore } from './store.js';
import type { AuthzRequest, Authorizer } from './types.js';

const log = createLogger('test', 'silent');
const dir = mkdtempSync(join(tmpdir(), 'wfpo-ctrl-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const pod = (ns: string, name: string, sa: string, ip: string, labels: Record<string, string> = {}, annotations: Record<string, string> = {}) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels, annotations }, spec: { serviceAccountName: sa }, status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
});
const policy = (name: string, spec: unknown) => ({ apiVersion: 'policy.weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name, namespace: 'shop' }, spec });
const req = (from: string, port: number): AuthzRequest => ({ direction: 'inbound', source: { address: from, port: 1 }, destination: { address: '10.0.0.1', port } });

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
const decision = (a: Authorizer, from: string, port: number) => a.decide(req(from, port));

t.test('policy changes in the API reach a connected proxy', async (t) => {
  const api = new TestApiServer([POLICIES_PATH, PODS_PATH, NAMESPACES_PATH]);
  await api.start();
  api.put(NAMESPACES_PATH, { metadata: { name: 'shop' } });
  api.put(PODS_PATH, pod('shop', 'api-0', 'api', '10.0.0.1', { app: 'api' }));
  api.put(PODS_PATH, pod('web', 'web-0', 'frontend', '10.1.0.5'));
  api.tokens.set('tok-api-0', { username: 'system:serviceaccount:shop:api', extra: { 'authentication.kubernetes.io/pod-name': ['api-0'] }, audiences: ['weft'] });
  const kube = kubeHttpFor(api.url);
  const store = new PolicyStore();
  const controller = startPolicyController({ http: kube, store, log });
  await controller.synced;
  const app = Fastify();
  await app.register(policyPlugin, { store, kube, keepaliveMs: 200 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const tokenPath = join(dir, 'token');
  writeFileSync(tokenPath, 'tok-api-0\n');
  const src = await subscribePolicy(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, tokenPath, { namespace: 'shop', name: 'api-0', labels: {}, defaultInbound: 'allow' }, log, { initialWaitMs: 3000, backoffMs: { initial: 20, max: 100 } });
  t.teardown(async () => {
    await src.close();
    await app.close();
    await controller.stop();
    await api.close();
  });
  const a = src.authorizer;
  t.match(decision(a, '10.1.0.5', 8080), { allow: true, reason: 'default-allow' }, 'no policy yet');

  api.put(POLICIES_PATH, policy('allow-web', { selector: { matchLabels: { app: 'api' } }, action: 'ALLOW', rules: [{ from: [{ source: { namespaces: ['web'] } }], to: [{ operation: { ports: [8080] } }] }] }));
  await until('ALLOW policy applied', () => decision(a, '10.1.0.5', 9090).reason === 'no-allow-match');
  t.match(decision(a, '10.1.0.5', 8080), { allow: true, policy: 'shop/allow-web', rule: 0 }, 'web pod resolved to its namespace through the streamed peers');
  t.match(decision(a, '10.9.9.9', 8080), { allow: false }, 'unknown peer');
  await until('status written', () => (api.get(POLICIES_PATH, 'shop/allow-web') as { status?: unknown }).status !== undefined);
  t.match(api.get(POLICIES_PATH, 'shop/allow-web'), { status: { conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', observedGeneration: 1 }] } });

  // Invalid policies (webhook bypassed) are reported and not applied.
  api.put(POLICIES_PATH, policy('broken', { action: 'DENY', rules: [{ to: [{ operation: { paths: ['x'] } }] }] }));
  await until('invalid status', () => (api.get(POLICIES_PATH, 'shop/broken') as { status?: unknown }).status !== undefined);
  t.match(api.get(POLICIES_PATH, 'shop/broken'), { status: { conditions: [{ type: 'Accepted', status: 'False', reason: 'Invalid', message: /spec\.rules\[0\]\.to\[0\]\.operation\.paths\[0\]/ }] } });
  await until('warning event', () => api.events.length === 1);
  t.match(api.events[0], { type: 'Warning', reason: 'InvalidPolicy', involvedObject: { kind: 'AuthorizationPolicy', name: 'broken' } });

  // A peer moving to another address follows; the watch connection drops and 410s meanwhile.
  api.dropWatches();
  api.put(PODS_PATH, pod('web', 'web-0', 'frontend', '10.1.0.6'));
  api.compact();
  await until('peer moved', () => decision(a, '10.1.0.6', 8080).allow && !decision(a, '10.1.0.5', 8080).allow);
  t.pass('pod IP change reached the proxy across a dropped, compacted watch');

  // Labels no longer selected → the policy no longer applies to this pod.
  api.put(PODS_PATH, pod('shop', 'api-0', 'api', '10.0.0.1', { app: 'other' }, { 'weft.dev/default-inbound-policy': 'deny' }));
  await until('deselected', () => decision(a, '10.1.0.6', 8080).reason === 'default-deny');
  t.pass('label change deselects the policy; the pod annotation sets the default');

  api.put(PODS_PATH, pod('shop', 'api-0', 'api', '10.0.0.1', { app: 'api' }));
  api.put(POLICIES_PATH, policy('deny-web', { action: 'DENY', rules: [{ from: [{ source: { serviceAccounts: ['web/frontend'] } }] }] }));
  await until('DENY wins', () => decision(a, '10.1.0.6', 8080).reason === 'deny-policy');
  api.remove(POLICIES_PATH, 'shop/deny-web');
  api.remove(POLICIES_PATH, 'shop/allow-web');
  await until('deleted', () => decision(a, '10.1.0.6', 8080).reason === 'default-allow');
  t.pass('DENY then deletions reach the proxy');
  t.equal(api.statusPatches.filter((p) => p.path.includes('/broken/')).length, 1, 'status of an unchanged policy is written once (no write loop, not on relist)');
});
