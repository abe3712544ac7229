import t from 'tap';
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { kubeHttpFor } from '../k8s/client.js';
import { TestApiServer } from '../k8s/testserver.js';
import { createRegistry } from '../metrics/registry.js';
import { policyPlugin } from './server.js';
import { PolicyStore } from './store.js';

const policy = (spec: unknown, name = 'p') => ({ apiVersion: 'policy.weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name, namespace: 'shop' }, spec });
const review = (object: unknown, operation = 'CREATE') => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-1', operation, object } });

t.test('POST /validate', async (t) => {
  const registry = createRegistry();
  const app = Fastify();
  await app.register(policyPlugin, { store: new PolicyStore(), registry });
  t.teardown(() => app.close());
  const post = async (body: unknown) => app.inject({ method: 'POST', url: '/validate', payload: body as object });

  const ok = await post(review(policy({ action: 'DENY', rules: [{ from: [{ source: { namespaces: ['batch'] } }] }] })));
  t.same(ok.json(), { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-1', allowed: true } });

  const bad = await post(review(policy({ rules: [{ to: [{ operation: { paths: ['/ok'] } }, { operation: { paths: ['/a', '/b', 'c'] } }] }] })));
  t.match(bad.json(), { response: { uid: 'u-1', allowed: false, status: { code: 422, reason: 'Invalid', message: /AuthorizationPolicy shop\/p: spec\.rules\[0\]\.to\[1\]\.operation\.paths\[2\]: must start with "\/"/ } } });

  // A typo kubectl did not catch (no strict field validation) and the CRD did not prune.
  const typo = await post(review(policy({ rules: [{ from: [{ source: { namespace: ['web'] } }] }] })));
  t.match(typo.json(), { response: { allowed: false, status: { code: 422, message: /spec\.rules\[0\]\.from\[0\]\.source: Unrecognized key: "namespace"/ } } }, 'an unknown field is refused by name');
  // The API server may send the object without metadata.namespace: the request's namespace counts.
  const noNs = { ...review({ apiVersion: 'policy.weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'q' }, spec: { rules: [{ to: [] }] } }), request: { uid: 'u-2', operation: 'CREATE', namespace: 'payments', object: { apiVersion: 'policy.weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'q' }, spec: { rules: [{ to: [] }] } } } };
  t.match((await post(noNs)).json(), { response: { allowed: false, status: { message: /^AuthorizationPolicy payments\/q: spec\.rules\[0\]\.to: must not be empty/ } } }, 'the message names the request namespace');
  t.match((await post(review({ junk: true }, 'DELETE'))).json(), { response: { allowed: true } }, 'DELETE is never blocked');
  const malformed = await post({ kind: 'Nope' });
  t.equal(malformed.statusCode, 400);
  t.match(await registry.metrics(), /weft_policy_validations_total\{result="rejected"\} 3/);
});

t.test('GET /v1/policy/watch authentication', async (t) => {
  const api = new TestApiServer([]);
  await api.start();
  api.tokens.set('api-0', { username: 'system:serviceaccount:shop:api', extra: { 'authentication.kubernetes.io/pod-name': ['api-0'] }, audiences: ['weft'] });
  api.tokens.set('db-as-api', { username: 'system:serviceaccount:shop:api', extra: { 'authentication.kubernetes.io/pod-name': ['db-0'] }, audiences: ['weft'] });
  api.tokens.set('legacy', { username: 'system:serviceaccount:shop:api', audiences: ['weft'] });
  api.tokens.set('other-aud', { username: 'system:serviceaccount:shop:api', extra: { 'authentication.kubernetes.io/pod-name': ['api-0'] }, audiences: ['vault'] });
  const store = new PolicyStore();
  store.upsertPod({ metadata: { name: 'api-0', namespace: 'shop', labels: { app: 'api' } }, spec: { serviceAccountName: 'api' }, status: { podIP: '10.0.0.1' } });
  store.upsertPod({ metadata: { name: 'db-0', namespace: 'shop' }, spec: { serviceAccountName: 'db' }, status: { podIP: '10.0.0.2' } });
  const app = Fastify();
  await app.register(policyPlugin, { store, kube: kubeHttpFor(api.url), keepaliveMs: 60_000 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(async () => {
    await app.close();
    await api.close();
  });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const get = (token: string | undefined, q = '') => fetch(`${base}/v1/policy/watch${q}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  t.equal((await get(undefined)).status, 401, 'no token');
  const invalid = await get('forged');
  t.equal(invalid.status, 401, 'invalid token');
  t.match(await invalid.json(), { message: /invalid token/ });
  t.equal((await get('other-aud')).status, 401, 'token for another audience');
  t.equal((await get('legacy')).status, 403, 'a token not bound to a pod');
  const spoof = await get('api-0', '?namespace=shop&pod=db-0');
  t.equal(spoof.status, 403, 'a pod cannot subscribe as another pod');
  t.match(await spoof.json(), { message: /only subscribe as itself.*shop\/api-0, not shop\/db-0/ });

  const mismatch = await get('db-as-api');
  t.equal(mismatch.status, 403, 'the token\'s service account must be the pod\'s');
  t.match(await mismatch.json(), { message: /runs as service account db, not api/ });

  const res = await get('api-0', '?namespace=shop&pod=api-0');
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'application/x-ndjson');
  const reader = res.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  t.match(JSON.parse(first.trim()), { policies: [], peers: {} }, 'first snapshot right away');
  await reader.cancel();
});

t.test('GET /v1/policy/watch ends when the reviewed token expires; the proxy then reconnects', async (t) => {
  const api = new TestApiServer([]);
  await api.start();
  const jwt = (expInSeconds: number) => `h.${Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + expInSeconds })).toString('base64url')}.s`;
  const short = jwt(2);
  const long = jwt(3600);
  for (const tok of [short, long]) api.tokens.set(tok, { username: 'system:serviceaccount:shop:api', extra: { 'authentication.kubernetes.io/pod-name': ['api-0'] }, audiences: ['weft'] });
  const store = new PolicyStore();
  store.upsertPod({ metadata: { name: 'api-0', namespace: 'shop' }, spec: { serviceAccountName: 'api' }, status: { podIP: '10.0.0.1' } });
  const app = Fastify();
  await app.register(policyPlugin, { store, kube: kubeHttpFor(api.url), keepaliveMs: 60_000 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(async () => {
    await app.close();
    await api.close();
  });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const open = async (token: string) => (await fetch(`${base}/v1/policy/watch`, { headers: { authorization: `Bearer ${token}` } })).body!.getReader();
  const ended = async (reader: ReadableStreamDefaultReader<Uint8Array>, ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const r = await Promise.race([reader.read(), new Promise<'wait'>((res) => setTimeout(() => res('wait'), left))]);
      if (r === 'wait') return false;
      if (r.done) return true;
    }
  };
  const shortStream = await open(short);
  const longStream = await open(long);
  t.ok(await ended(shortStream, 8000), 'the stream of a token that expires is ended by the controller');
  t.notOk(await ended(longStream, 500), 'a stream whose token is still valid stays open');
  await longStream.cancel();
});
