// The webhook over real HTTPS (fastify on 127.0.0.1, a self-signed cert from openssl), with
// AdmissionReview bodies as kube-apiserver sends them.
import { rmSync } from 'node:fs';
import type { FastifyPluginAsync } from 'fastify';
import t from 'tap';
import { defaultValues } from '../api/values.js';
import type { Pod } from '../api/k8s-types.js';
import { createLogger } from '../log/index.js';
import { createInjectorMetrics } from '../metrics/injector.js';
import { applyJsonPatch } from '../inject/testing.js';
import { buildAdminApp } from './admin.js';
import { buildControllerApp, type ControllerApp } from './app.js';
import { deploymentPod, haveOpenssl, makeCert, podReview, post, tempDir } from './test-helpers.js';

if (!haveOpenssl()) {
  t.test('webhook TLS tests', { skip: 'openssl CLI not found: cannot make a test certificate' }, async () => {});
} else {
  const dir = tempDir('webhook');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pair = makeCert(dir, 'weft-controller');
  const metrics = createInjectorMetrics();
  const events: unknown[] = [];
  const policyLike: FastifyPluginAsync = async (app, opts) => {
    app.get('/policy/ping', async () => ({ pong: true, namespace: (opts as { namespace?: string }).namespace }));
  };
  let app: ControllerApp;
  let port = 0;

  t.before(async () => {
    app = await buildControllerApp({
      tls: { cert: Buffer.from(pair.cert), key: Buffer.from(pair.key) },
      config: { values: defaultValues(), version: '0.1.0', controllerNamespace: 'weft-system' },
      metrics,
      logger: createLogger('test', 'silent'),
      plugins: [policyLike],
      pluginOptions: { namespace: 'weft-system' },
      recordEvent: (e) => events.push(e),
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as { port: number }).port;
  });
  t.teardown(() => app.close());

  const send = (body: unknown) => post(port, '/inject', JSON.stringify(body), { ca: pair.cert });
  const parse = (b: string) => JSON.parse(b) as { response: { uid: string; allowed: boolean; patchType?: string; patch?: string; status?: { code: number; message: string } } };

  t.test('a Deployment pod is injected: uid echoed, base64 JSONPatch that yields the injected pod', async (t) => {
    const pod = deploymentPod();
    const res = await send(podReview('705ab4f5-6393-11e8-b7cc-42010a800002', pod));
    t.equal(res.status, 200);
    const r = parse(res.body).response;
    t.equal(r.uid, '705ab4f5-6393-11e8-b7cc-42010a800002');
    t.equal(r.allowed, true);
    t.equal(r.patchType, 'JSONPatch');
    const patch = JSON.parse(Buffer.from(r.patch ?? '', 'base64').toString('utf8')) as { op: string; path: string; value?: unknown }[];
    const out = applyJsonPatch(pod, patch) as Pod;
    t.same(out.spec.initContainers?.map((c) => c.name), ['weft-init', 'weft-proxy']);
    t.match(out.metadata?.annotations?.['weft.dev/injected'], /^0\.1\.0\/sha256:/);
    t.same(out.spec.containers[0]?.livenessProbe?.httpGet, { path: '/app-health/web/livez', port: 15020, scheme: 'HTTP' });

    const again = parse((await send(podReview('second', out))).body).response;
    t.same(again, { uid: 'second', allowed: true }, 'reinvocation on the injected pod changes nothing');
  });

  t.test('a skipped pod is allowed unchanged and an Event is recorded', async (t) => {
    const pod = deploymentPod();
    (pod.spec as Record<string, unknown>).hostNetwork = true;
    const r = parse((await send(podReview('u-host', pod))).body).response;
    t.same(r, { uid: 'u-host', allowed: true });
    t.match(events.at(-1), {
      kind: 'Event',
      reason: 'WeftInjectionSkipped',
      message: /host-network/,
      involvedObject: { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d4b9c8f6d', uid: 'f0e1', namespace: 'shop' },
    });
    const before = events.length;
    const dry = podReview('u-dry', pod) as { request: Record<string, unknown> };
    dry.request.dryRun = true;
    t.same(parse((await send(dry)).body).response, { uid: 'u-dry', allowed: true }, 'a dryRun review gets the same answer');
    t.equal(events.length, before, 'but records no Event (the webhook declares sideEffects: NoneOnDryRun)');
    const sys = parse((await send(podReview('u-sys', deploymentPod('kube-system'), 'kube-system'))).body).response;
    t.same(sys, { uid: 'u-sys', allowed: true });
  });

  t.test('a non-Pod kind and a non-CREATE operation are allowed unchanged', async (t) => {
    const review = podReview('u-dep', { kind: 'Deployment' }) as { request: Record<string, unknown> };
    review.request.kind = { group: 'apps', version: 'v1', kind: 'Deployment' };
    t.same(parse((await send(review)).body).response, { uid: 'u-dep', allowed: true });
    const upd = podReview('u-upd', deploymentPod()) as { request: Record<string, unknown> };
    upd.request.operation = 'UPDATE';
    t.same(parse((await send(upd)).body).response, { uid: 'u-upd', allowed: true });
  });

  t.test('an invalid annotation is refused naming the annotation and the allowed values', async (t) => {
    for (const [key, value, re] of [
      ['intercept', 'ebpff', /annotation intercept: "ebpff" is invalid; allowed: tproxy, ebpf/],
      ['weft.dev/exclude-inbound-ports', '70000', /weft.dev\/exclude-inbound-ports: "70000" is invalid; allowed: a comma-separated list of ports 1-65535/],
      ['weft.dev/exclude-outbound-cidrs', '10.0.0.0/33', /weft.dev\/exclude-outbound-cidrs: "10.0.0.0\/33" is invalid/],
      ['weft.dev/proxy-memory', 'lots', /weft.dev\/proxy-memory: "lots" is invalid; allowed: a Kubernetes quantity/],
    ] as const) {
      const pod = deploymentPod();
      (pod.metadata as Record<string, unknown>).annotations = { [key]: value };
      const r = parse((await send(podReview(`u-${value}`, pod))).body).response;
      t.equal(r.allowed, false, `${key}=${value} refused`);
      t.equal(r.uid, `u-${value}`);
      t.match(r.status, { code: 400, message: re });
    }
  });

  t.test('a malformed AdmissionReview gets HTTP 400 with a clear message', async (t) => {
    const cases: [string | Buffer, RegExp][] = [
      ['{"apiVersion":', /malformed AdmissionReview: body is not valid JSON/],
      ['[]', /malformed AdmissionReview/],
      ['{"apiVersion":"admission.k8s.io/v1","__proto__":{"polluted":true}}', /malformed AdmissionReview: body is not valid JSON: it has a "__proto__" key/],
      ['{"request":{"constructor":{"prototype":{"x":1}}}}', /it has a "constructor.prototype" key/],
      [JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }), /apiVersion: must be admission.k8s.io\/v1/],
      [JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), /request: must be an object/],
      [JSON.stringify(podReview('', deploymentPod())), /request.uid: must not be empty/],
      [JSON.stringify(podReview('u', { spec: { containers: 'web' } })), /request.object.spec.containers/],
    ];
    for (const [body, re] of cases) {
      const res = await post(port, '/inject', body, { ca: pair.cert });
      t.equal(res.status, 400, String(body).slice(0, 60));
      t.match(JSON.parse(res.body), { message: re });
    }
  });

  t.test('plugins add routes to the same HTTPS server (how the policy server is wired)', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/policy/ping' });
    t.same(res.json(), { pong: true, namespace: 'weft-system' });
  });

  t.test('metrics count reviews by result and reason', async (t) => {
    const admin = buildAdminApp({ registry: metrics.registry, isReady: () => true, logger: createLogger('test', 'silent') });
    const text = (await admin.inject({ url: '/metrics' })).body;
    t.match(text, /weft_injector_admission_reviews_total\{result="injected",reason=""\} [1-9]/);
    t.match(text, /weft_injector_admission_reviews_total\{result="skipped",reason="host-network"\} 2/, 'the dryRun review counts too');
    t.match(text, /weft_injector_admission_reviews_total\{result="refused",reason="weft.dev\/proxy-memory"\} 1/);
    t.match(text, /weft_injector_admission_reviews_total\{result="error",reason="malformed"\} [1-9]/);
    t.match(text, /weft_injector_admission_review_duration_seconds_count\{result="injected"\} [1-9]/);
    t.equal((await admin.inject({ url: '/healthz' })).statusCode, 200);
    t.equal((await admin.inject({ url: '/readyz' })).statusCode, 200);
    const notReady = buildAdminApp({ registry: metrics.registry, isReady: () => false, logger: createLogger('test', 'silent') });
    t.equal((await notReady.inject({ url: '/readyz' })).statusCode, 503);
  });
}
