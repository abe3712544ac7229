// weft_requests_total stays bounded whatever clients and servers send: methods outside the
// standard nine fold to OTHER, status codes are 0 (no response) or 100-599.
import t from 'tap';
import { methodLabel, statusLabel } from '../../metrics/proxy.js';
import { dial, listen, readAll, startTestProxy } from '../test-support.js';

t.test('label folding', async (t) => {
  t.equal(methodLabel('GET'), 'GET');
  t.equal(methodLabel('get'), 'OTHER');
  t.equal(methodLabel('PROPFIND'), 'OTHER');
  t.equal(methodLabel(''), 'OTHER');
  t.same([0, 100, 200, 599].map(statusLabel), ['0', '100', '200', '599']);
  t.same([1, 99, 600, 999, -1].map(statusLabel), ['other', 'other', 'other', 'other', 'other']);
});

t.test('through the proxy: invented methods fold to OTHER, every request counted once', async (t) => {
  let n = 0;
  const server = await listen((s) => {
    let pending = '';
    s.on('data', (b: Buffer) => {
      pending += b.toString('latin1');
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) >= 0) {
        pending = pending.slice(end + 4);
        const status = 200 + (n++ % 100); // 200-299: each a valid code
        s.write(`HTTP/1.1 ${status} X\r\ncontent-length: 0\r\n\r\n`);
      }
    });
  });
  t.teardown(() => server.close());
  const tp = await startTestProxy({ detectTimeoutMs: 2000 });
  t.teardown(() => tp.close());
  tp.dst = { address: '127.0.0.1', port: server.port };
  const c = await dial(tp.inbound);
  const all = readAll(c);
  c.on('end', () => c.end());
  const reqs = ['GET / HTTP/1.1\r\nHost: a\r\n\r\n'];
  for (let i = 0; i < 99; i++) reqs.push(`M${i} /x HTTP/1.1\r\nHost: a\r\n${i === 98 ? 'Connection: close\r\n' : ''}\r\n`);
  c.write(reqs.join(''));
  await all;
  const values = (await tp.proxy.metrics.registry.getSingleMetric('weft_requests_total')?.get())?.values ?? [];
  const methods = new Set(values.map((v) => v.labels.method));
  t.same([...methods].sort(), ['GET', 'OTHER'], 'invented methods fold to OTHER');
  t.equal(values.reduce((a, v) => a + v.value, 0), 100, 'every request counted');
  t.ok(values.every((v) => Number(v.labels.response_code) >= 200 && Number(v.labels.response_code) <= 299));
});
