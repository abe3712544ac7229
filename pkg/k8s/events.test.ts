// The Event queue: Events reach the API server in order; a hung or failing API server never
// blocks record(), failures are logged, and a full queue drops instead of growing.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import t from 'tap';
import type { KubeEvent } from '../api/k8s-types.js';
import { createLogger } from '../log/index.js';
import { kubeHttpFor } from './client.js';
import { createEventQueue } from './events.js';
import { TestApiServer } from './testserver.js';

const ev = (pod: string): KubeEvent => ({
  apiVersion: 'v1',
  kind: 'Event',
  metadata: { generateName: `${pod}.weft-`, namespace: 'shop' },
  involvedObject: { apiVersion: 'v1', kind: 'Pod', name: pod, namespace: 'shop' },
  type: 'Warning',
  reason: 'WeftInjectionSkipped',
  message: `skipped ${pod}`,
  source: { component: 'weft-controller' },
  reportingComponent: 'weft.dev/controller',
  action: 'Inject',
});

function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  const log = createLogger('test', 'info', sink);
  return { log, lines };
}

t.test('Events are POSTed in order to the namespace, stamped', async (t) => {
  const api = new TestApiServer([]);
  await api.start();
  t.teardown(() => api.close());
  const q = createEventQueue(kubeHttpFor(api.url), createLogger('test', 'silent'));
  t.teardown(() => q.close());
  t.ok(q.record(ev('a')));
  t.ok(q.record(ev('b')));
  await q.flush();
  t.same(api.requests, ['POST /api/v1/namespaces/shop/events', 'POST /api/v1/namespaces/shop/events']);
  t.match(api.events, [{ involvedObject: { name: 'a' }, reason: 'WeftInjectionSkipped', count: 1, firstTimestamp: /^\d{4}-/ }, { involvedObject: { name: 'b' } }]);
});

t.test('a hung API server: record() returns at once, the queue is bounded, timeouts are logged', async (t) => {
  const held: import('node:http').ServerResponse[] = [];
  const server = createServer((_req, res) => void held.push(res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const { log, lines } = captureLog();
  const q = createEventQueue(kubeHttpFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`), log, { maxQueue: 2, timeoutMs: 300 });
  t.teardown(() => q.close());
  // One is taken by the sender at once; two wait; the fourth finds the queue full.
  const accepted = ['a', 'b', 'c', 'd'].map((p) => q.record(ev(p)));
  t.same(accepted, [true, true, true, false], 'the Event beyond the bound is dropped');
  t.match(lines, [{ msg: /Event queue full/, dropped: 1 }]);
  await q.flush();
  const failed = lines.filter((l) => l.msg === 'could not record a Kubernetes Event');
  t.equal(failed.length, 3, 'each timed-out POST is logged');
  t.match(failed[0], { pod: 'a', reason: 'WeftInjectionSkipped' });
});

t.test('an API error is logged with its status and the next Event is still sent', async (t) => {
  let n = 0;
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let b = '';
    req.on('data', (c: Buffer) => (b += c.toString()));
    req.on('end', () => {
      bodies.push(b);
      res.writeHead(n++ === 0 ? 403 : 201, { 'content-type': 'application/json' });
      res.end(JSON.stringify(n === 1 ? { kind: 'Status', message: 'events is forbidden' } : {}));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const { log, lines } = captureLog();
  const q = createEventQueue(kubeHttpFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`), log);
  t.teardown(() => q.close());
  q.record(ev('a'));
  q.record(ev('b'));
  await q.flush();
  t.equal(bodies.length, 2);
  t.match(lines, [{ msg: 'could not record a Kubernetes Event', err: /HTTP 403: events is forbidden/ }]);
});
