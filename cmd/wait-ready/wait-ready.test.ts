// `weft wait-ready` holds the classic sidecar's postStart hook until the proxy's /ready says
// 200, and fails naming the URL when it never does.
import { createServer, type Server } from 'node:http';
import t from 'tap';
import { run } from './index.js';

function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer(handler).listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

t.test('returns 0 once /ready answers 200', async (t) => {
  let calls = 0;
  const { server, port } = await listen((req, res) => {
    calls++;
    res.statusCode = req.url === '/ready' && calls >= 3 ? 200 : 503;
    res.end();
  });
  t.teardown(() => server.close());
  t.equal(await run(['--admin-port', String(port), '--timeout-ms', '10000', '--interval-ms', '10']), 0);
  t.ok(calls >= 3, 'it kept polling through the 503s');
});

t.test('returns 1 and names the URL when the proxy never gets ready', async (t) => {
  const { server, port } = await listen((_req, res) => {
    res.statusCode = 503;
    res.end();
  });
  t.teardown(() => server.close());
  const writes: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => (writes.push(String(s)), true)) as typeof process.stderr.write;
  t.teardown(() => void (process.stderr.write = orig));
  t.equal(await run(['--admin-port', String(port), '--timeout-ms', '300', '--interval-ms', '20']), 1);
  t.match(writes.join(''), new RegExp(`http://127.0.0.1:${port}/ready not ready after 300 ms \\(last: `));
});

t.test('bad flags are named', async (t) => {
  await t.rejects(run(['--admin-port', '70000']), { code: 'WEFT_ERR_BAD_FLAG', message: /--admin-port/ });
});
