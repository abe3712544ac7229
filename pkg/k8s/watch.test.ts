import t, { type Test } from 'tap';
import { createLogger } from '../log/index.js';
import { kubeHttpFor } from './client.js';
import { recordEvent, updateStatusConditions } from './status.js';
import { TestApiServer } from './testserver.js';
import { reviewToken } from './token-review.js';
import { ListWatch, type KubeObject, type WatchEventType } from './watch.js';

const PODS = '/api/v1/pods';
const log = createLogger('test', 'silent');
const pod = (name: string, ip: string): KubeObject & { status: { podIP: string } } => ({ metadata: { name, namespace: 'shop' }, status: { podIP: ip } });

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function setup(t: Test, opts: { timeoutSeconds?: number; pageSize?: number } = {}) {
  const api = new TestApiServer([PODS]);
  await api.start();
  const seen: [WatchEventType, string, string][] = [];
  const restarts: string[] = [];
  let syncs = 0;
  const lw = new ListWatch(kubeHttpFor(api.url), PODS, {
    event: (type, o) => seen.push([type, o.metadata.name, (o as { status?: { podIP?: string } }).status?.podIP ?? '']),
    synced: () => void syncs++,
  }, { log, backoffMs: { initial: 20, max: 100 }, onRestart: (r) => restarts.push(r), ...opts });
  t.teardown(async () => {
    await lw.stop();
    await api.close();
  });
  return { api, lw, seen, restarts, syncs: () => syncs };
}

t.test('list (paginated) then watch: ADDED, MODIFIED, DELETED, BOOKMARK', async (t) => {
  const { api, lw, seen } = await setup(t, { pageSize: 2 });
  for (let i = 0; i < 5; i++) api.put(PODS, pod(`p${i}`, `10.0.0.${i}`));
  await lw.start();
  t.equal(lw.list().length, 5, 'all pages listed');
  t.ok(api.requests.some((r) => r.includes('continue=2')), 'used continue tokens');
  await until(() => api.watchCount(PODS) === 1, 'watch open');
  api.put(PODS, pod('p1', '10.0.0.99'));
  api.remove(PODS, 'shop/p0');
  api.put(PODS, pod('p9', '10.0.0.9'));
  await until(() => seen.length === 8, 'events');
  t.same(seen.slice(5), [['MODIFIED', 'p1', '10.0.0.99'], ['DELETED', 'p0', '10.0.0.0'], ['ADDED', 'p9', '10.0.0.9']]);
  api.bookmark(PODS);
  await until(() => lw.resourceVersion === String(Number(api.get(PODS, 'shop/p9')?.metadata.resourceVersion)), 'bookmark');
  t.equal(lw.get('shop/p1')?.metadata.resourceVersion, api.get(PODS, 'shop/p1')?.metadata.resourceVersion, 'cache follows the server');
});

t.test('a dropped connection resumes from the last resourceVersion without relisting', async (t) => {
  const { api, lw, seen, syncs } = await setup(t);
  api.put(PODS, pod('a', '10.0.0.1'));
  await lw.start();
  await until(() => api.watchCount(PODS) === 1, 'watch open');
  api.dropWatches();
  api.put(PODS, pod('b', '10.0.0.2'));
  await until(() => seen.some(([, n]) => n === 'b'), 'event made while disconnected');
  t.equal(syncs(), 1, 'no relist');
  const watches = api.requests.filter((r) => r.includes('watch=true'));
  t.ok(watches.length >= 2 && !watches[1]?.includes('resourceVersion=0&'), 'watched again from a version');
});

t.test('410 Gone → relist; deletions missed meanwhile are delivered', async (t) => {
  for (const asStatus of [false, true]) {
    await t.test(asStatus ? 'as HTTP status' : 'as ERROR event', async (t) => {
      const { api, lw, seen, syncs, restarts } = await setup(t);
      api.goneAsHttpStatus = asStatus;
      api.put(PODS, pod('a', '10.0.0.1'));
      api.put(PODS, pod('b', '10.0.0.2'));
      await lw.start();
      await until(() => api.watchCount(PODS) === 1, 'watch open');
      // Cut the watch and change things "while compacted" so the old version is gone.
      const before = api.requests.length;
      api.dropWatches();
      api.remove(PODS, 'shop/a');
      api.put(PODS, pod('c', '10.0.0.3'));
      api.compact();
      await until(() => syncs() === 2, 'relist');
      t.ok(restarts.includes('gone'), 'restart reason gone');
      t.ok(api.requests.slice(before).some((r) => r.startsWith('GET /api/v1/pods?limit=')), 'listed again');
      t.same(lw.list().map((o) => o.metadata.name).sort(), ['b', 'c']);
      t.ok(seen.some(([ty, n]) => ty === 'DELETED' && n === 'a'), 'DELETED synthesized for the object gone during the gap');
      t.ok(seen.some(([ty, n]) => ty === 'ADDED' && n === 'c'));
      await until(() => api.watchCount(PODS) === 1, 'watching again');
      api.put(PODS, pod('d', '10.0.0.4'));
      await until(() => seen.some(([, n]) => n === 'd'), 'events after relist');
    });
  }
});

t.test('a watch the server times out is resumed', async (t) => {
  const { api, lw, seen, restarts } = await setup(t, { timeoutSeconds: 1 });
  await lw.start();
  await until(() => restarts.includes('closed'), 'server closed the watch', 4000);
  api.put(PODS, pod('late', '10.0.0.7'));
  await until(() => seen.some(([, n]) => n === 'late'), 'event after resume');
});

t.test('TokenReview, status patch and events', async (t) => {
  const api = new TestApiServer(['/apis/policy.weft.dev/v1alpha1/authorizationpolicies']);
  await api.start();
  t.teardown(() => api.close());
  const http = kubeHttpFor(api.url);
  api.tokens.set('good', { username: 'system:serviceaccount:shop:api', extra: { 'authentication.kubernetes.io/pod-name': ['api-0'] }, audiences: ['weft'] });
  t.match(await reviewToken(http, 'good', ['weft']), { authenticated: true, username: 'system:serviceaccount:shop:api', extra: { 'authentication.kubernetes.io/pod-name': ['api-0'] }, audiences: ['weft'] });
  t.match(await reviewToken(http, 'good', ['other']), { authenticated: false });
  t.match(await reviewToken(http, 'bad', ['weft']), { authenticated: false, error: /invalid/ });
  const col = '/apis/policy.weft.dev/v1alpha1/authorizationpolicies';
  const stored = api.put(col, { metadata: { name: 'p', namespace: 'shop' } });
  const cond = { type: 'Accepted', status: 'True' as const, reason: 'Accepted', message: 'ok', lastTransitionTime: new Date().toISOString() };
  t.equal(await updateStatusConditions(http, 'policy.weft.dev', 'v1alpha1', 'authorizationpolicies', stored, [cond]), 'updated');
  t.match(api.get(col, 'shop/p'), { status: { conditions: [{ type: 'Accepted', status: 'True' }] } });
  t.equal(await updateStatusConditions(http, 'policy.weft.dev', 'v1alpha1', 'authorizationpolicies', stored, [cond]), 'conflict', 'a stale resourceVersion is a conflict');
  await t.rejects(updateStatusConditions(http, 'policy.weft.dev', 'v1alpha1', 'authorizationpolicies', { metadata: { name: 'nope', namespace: 'shop' } }, [cond]), /404/);
  await recordEvent(http, { apiVersion: 'policy.weft.dev/v1alpha1', kind: 'AuthorizationPolicy', namespace: 'shop', name: 'p' }, 'Warning', 'InvalidPolicy', 'bad');
  t.match(api.events[0], { reason: 'InvalidPolicy', involvedObject: { name: 'p' } });
});

t.test('a server that ends every watch at once is retried with backoff, not in a hot loop', async (t) => {
  const { api, lw, seen } = await setup(t);
  api.put(PODS, pod('p0', '10.0.0.1'));
  api.endWatchesAtOnce = true;
  await lw.start();
  const watches = () => api.requests.filter((r) => r.includes('watch=true')).length;
  const first = watches();
  await new Promise((r) => setTimeout(r, 1000));
  // Backoff 20 ms doubling to 100 ms: about a dozen watches a second; without it, hundreds.
  t.ok(watches() - first <= 20, `${watches() - first} watches in 1 s`);
  t.ok(watches() - first >= 3, 'but it keeps trying');
  api.endWatchesAtOnce = false;
  api.put(PODS, pod('p1', '10.0.0.2'));
  await until(() => seen.some(([, n]) => n === 'p1'), 'p1 after the server recovered');
  t.pass('events flow again once watches last');
});
