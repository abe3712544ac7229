// The webhook never crashes and never answers 5xx, whatever the body: a few thousand
// generated bodies (mutated kube-apiserver reviews, random annotation values, broken JSON,
// odd content types) through the full fastify pipeline, then a real HTTPS request still works.
import { rmSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import t from 'tap';
import { defaultValues } from '../api/values.js';
import { createLogger } from '../log/index.js';
import { createInjectorMetrics } from '../metrics/injector.js';
import { review } from './admission.js';
import { buildControllerApp } from './app.js';
import { deploymentPod, haveOpenssl, makeCert, podReview, post, tempDir } from './test-helpers.js';

// Deterministic so a failure reproduces: mulberry32.
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(0x5eed);
const int = (n: number) => Math.floor(rand() * n);
const pickOne = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;

const ANNOTATIONS = ['intercept', 'weft.dev/intercept', 'weft.dev/inject', 'weft.dev/exclude-inbound-ports', 'weft.dev/exclude-outbound-ports', 'weft.dev/exclude-outbound-cidrs', 'weft.dev/include-outbound-cidrs', 'weft.dev/proxy-cpu', 'weft.dev/proxy-memory', 'weft.dev/proxy-cpu-limit', 'weft.dev/proxy-memory-limit', 'weft.dev/log-level', 'weft.dev/opaque-ports', 'weft.dev/native-sidecar', 'weft.dev/default-inbound-policy', 'weft.dev/injected'];
const STRINGS = ['', ' ', 'ebpf', 'tproxy', 'ebpff', '70000', '0', '-1', '1e3', '10.0.0.0/33', '::/0', '*', 'lots', '100m', 'true', 'enabled', 'disabled', '🙂', 'a,b,,c', '1,2,3', '__proto__', 'x'.repeat(5000)];

function randomValue(depth = 0): unknown {
  switch (int(depth > 2 ? 6 : 9)) {
    case 0: return null;
    case 1: return pickOne([0, -1, 1.5, 1337, 15001, 2 ** 53, -0]);
    case 2: return pickOne(STRINGS);
    case 3: return rand() < 0.5;
    case 4: return [];
    case 5: return {};
    case 6: return [randomValue(depth + 1), randomValue(depth + 1)];
    case 7: return { name: randomValue(depth + 1), containerPort: randomValue(depth + 1) };
    default: return { [pickOne(['spec', 'metadata', 'containers', 'port', 'httpGet'])]: randomValue(depth + 1) };
  }
}

/** Every [parent, key] in a JSON tree. */
function slots(node: unknown, out: [Record<string, unknown> | unknown[], string | number][] = []) {
  if (Array.isArray(node)) {
    node.forEach((v, i) => {
      out.push([node, i]);
      slots(v, out);
    });
  } else if (typeof node === 'object' && node !== null) {
    for (const [k, v] of Object.entries(node)) {
      out.push([node as Record<string, unknown>, k]);
      slots(v, out);
    }
  }
  return out;
}

function mutatedReview(): unknown {
  const r = podReview(`fuzz-${int(1e9)}`, deploymentPod());
  const n = 1 + int(4);
  for (let i = 0; i < n; i++) {
    const all = slots(r);
    const [parent, key] = pickOne(all);
    const what = int(10);
    if (what < 5) (parent as Record<string, unknown>)[key as string] = randomValue();
    else if (what < 7 && !Array.isArray(parent)) delete parent[key as string];
    else {
      const obj = (r.request as { object?: unknown } | undefined)?.object;
      if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) continue;
      const meta = ((obj as { metadata?: Record<string, unknown> }).metadata ??= {});
      if (typeof meta !== 'object' || meta === null) continue;
      meta.annotations = { ...(meta.annotations as object), [pickOne(ANNOTATIONS)]: pickOne(STRINGS) };
    }
  }
  return r;
}

function body(): { payload: string; contentType: string } {
  const kind = int(20);
  if (kind === 0) return { payload: JSON.stringify(mutatedReview()).slice(0, int(400)), contentType: 'application/json' };
  if (kind === 1) return { payload: Buffer.from(Array.from({ length: int(200) }, () => int(256))).toString('latin1'), contentType: 'application/json' };
  if (kind === 2) return { payload: JSON.stringify(randomValue()), contentType: 'application/json' };
  if (kind === 3) return { payload: JSON.stringify(mutatedReview()), contentType: pickOne(['text/plain', 'application/json; charset=utf-8', 'application/x-www-form-urlencoded', '']) };
  if (kind === 4) return { payload: '{"a":'.repeat(2000), contentType: 'application/json' };
  return { payload: JSON.stringify(mutatedReview()), contentType: 'application/json' };
}

const config = { values: defaultValues(), version: '0.1.0', controllerNamespace: 'weft-system' };

t.test('review() never throws on thousands of mutated reviews', async (t) => {
  let threw = 0;
  const results = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const input = mutatedReview();
    try {
      const out = review(input, config);
      results.set(out.result, (results.get(out.result) ?? 0) + 1);
      if (out.result === 'error' && out.httpStatus === 200) t.fail(`internal error: ${out.message}`);
    } catch (e) {
      if (threw++ === 0) t.fail(`review threw ${(e as Error).stack} on ${JSON.stringify(input).slice(0, 400)}`);
    }
  }
  t.equal(threw, 0, 'no exception escaped');
  t.ok((results.get('injected') ?? 0) > 0 && (results.get('refused') ?? 0) > 0 && (results.get('error') ?? 0) > 0, `a mix of outcomes: ${JSON.stringify([...results])}`);
});

if (!haveOpenssl()) {
  t.test('fuzz over HTTPS', { skip: 'openssl CLI not found: cannot make a test certificate' }, async () => {});
} else {
  t.test('the server answers every generated body with 200/400/413/415 and keeps serving', async (t) => {
    const dir = tempDir('fuzz');
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const pair = makeCert(dir, 'fuzz');
    const app = await buildControllerApp({ tls: { cert: Buffer.from(pair.cert), key: Buffer.from(pair.key) }, config, metrics: createInjectorMetrics(), logger: createLogger('test', 'silent'), bodyLimit: 64 * 1024 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    t.teardown(() => app.close());
    const statuses = new Map<number, number>();
    const port = (app.server.address() as { port: number }).port;
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: pair.cert });
    t.teardown(() => agent.destroy());
    let compared = 0;
    for (let i = 0; i < 3000; i++) {
      const { payload, contentType } = body();
      const res = await app.inject({ method: 'POST', url: '/inject', payload, headers: contentType ? { 'content-type': contentType } : {} });
      if (i < 600) {
        // Over a real socket a JSON body takes the fast path: it must answer exactly like the route.
        const wire = await post(port, '/inject', payload, { agent, contentType });
        compared++;
        if (wire.status !== res.statusCode || (res.statusCode !== 415 && wire.body !== res.body)) t.fail(`fast path and route differ for ${payload.slice(0, 200)}: ${wire.status} ${wire.body.slice(0, 200)} vs ${res.statusCode} ${res.body.slice(0, 200)}`);
      }
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (![200, 400, 413, 415].includes(res.statusCode)) t.fail(`status ${res.statusCode} for ${payload.slice(0, 200)}: ${res.body.slice(0, 200)}`);
      if (res.statusCode === 200) {
        const sent = JSON.parse(payload) as { request: { uid: string } };
        const got = res.json<{ response: { uid: string } }>();
        if (got.response.uid !== sent.request.uid) t.fail('uid not echoed');
      }
    }
    t.ok((statuses.get(200) ?? 0) > 100 && (statuses.get(400) ?? 0) > 100, `statuses: ${JSON.stringify([...statuses])}`);
    const big = await app.inject({ method: 'POST', url: '/inject', payload: JSON.stringify(podReview('big', { spec: { containers: [{ name: 'x'.repeat(70_000) }] } })), headers: { 'content-type': 'application/json' } });
    t.equal(big.statusCode, 413, 'a body over the limit is refused with 413');
    t.equal(compared, 600, 'the first 600 bodies were also sent over HTTPS, with the same answers');
    const bigWire = await post(port, '/inject', JSON.stringify(podReview('big', { spec: { containers: [{ name: 'x'.repeat(70_000) }] } })), { ca: pair.cert });
    t.equal(bigWire.status, 413, 'and over HTTPS too');
    // Streamed (chunked, no Content-Length): the limit is found while reading, the 413 still arrives.
    const streamed = await new Promise<number>((resolve, reject) => {
      const headers = { 'content-type': 'application/json', 'transfer-encoding': 'chunked' };
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/inject', method: 'POST', ca: pair.cert, servername: 'fuzz', headers }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      // One byte over, in one write: the server has read it all when it answers, so closing
      // the connection resets nothing the answer depends on.
      req.end('x'.repeat(64 * 1024 + 1));
    });
    t.equal(streamed, 413, 'a streamed body over the limit gets its 413');
    const ok = await post((app.server.address() as { port: number }).port, '/inject', JSON.stringify(podReview('still-alive', deploymentPod())), { ca: pair.cert });
    t.equal(ok.status, 200, 'still serving over HTTPS afterwards');
    t.match(JSON.parse(ok.body), { response: { uid: 'still-alive', allowed: true, patchType: 'JSONPatch' } });
  });
}
