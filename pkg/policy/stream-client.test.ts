// The controller stream's small HTTP client against raw servers: chunked bodies split at
// every byte, close-delimited bodies, error statuses, a server that never answers.
import { createServer, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { openStream } from './stream-client.js';

async function server(t: Test, onConn: (s: Socket, request: string) => void): Promise<URL> {
  const srv = createServer((s) => {
    let req = '';
    s.on('data', (b: Buffer) => {
      req += b.toString('latin1');
      if (req.includes('\r\n\r\n')) onConn(s, req);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => srv.close());
  return new URL(`http://127.0.0.1:${(srv.address() as { port: number }).port}/v1/policy/watch?namespace=shop&pod=web-0`);
}

const readAll = async (res: AsyncIterable<Buffer | string>): Promise<string> => {
  let out = '';
  for await (const c of res) out += String(c);
  return out;
};

t.test('a chunked NDJSON body written a byte at a time comes out whole, after the request the controller expects', async (t) => {
  let seen = '';
  const body = '{"version":1}\n\n{"version":2,"policies":[]}\n';
  const url = await server(t, (s, req) => {
    seen = req;
    const wire = `HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n${body.split('\n').filter(Boolean).map((l) => `${(l.length + 1).toString(16)};ext=1\r\n${l}\n\r\n`).join('')}0\r\n\r\n`;
    let i = 0;
    const drip = () => {
      if (i >= wire.length) return s.end();
      s.write(wire[i++]!);
      setImmediate(drip);
    };
    drip();
  });
  const res = await openStream(url, { authorization: 'Bearer tok', accept: 'application/x-ndjson' }, new AbortController().signal);
  t.equal(res.statusCode, 200);
  res.setEncoding('utf8');
  t.equal(await readAll(res), '{"version":1}\n{"version":2,"policies":[]}\n');
  t.match(seen, /^GET \/v1\/policy\/watch\?namespace=shop&pod=web-0 HTTP\/1\.1\r\n/);
  t.match(seen, /\r\nhost: 127\.0\.0\.1:\d+\r\n/);
  t.match(seen, /\r\nauthorization: Bearer tok\r\n/);
});

t.test('an error status comes with its close-delimited body', async (t) => {
  const url = await server(t, (s) => s.end('HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\n\r\n{"message":"not this pod"}'));
  const res = await openStream(url, {}, new AbortController().signal);
  t.equal(res.statusCode, 403);
  t.equal(await readAll(res), '{"message":"not this pod"}');
});

t.test('refused, garbage, silent-then-aborted: each a clear rejection', async (t) => {
  const free = await server(t, () => {});
  const port = Number(free.port);
  await t.rejects(openStream(new URL(`http://127.0.0.1:1/`), {}, new AbortController().signal), { code: 'ECONNREFUSED' });
  const garbage = await server(t, (s) => s.end('SSH-2.0-OpenSSH\r\n\r\n'));
  await t.rejects(openStream(garbage, {}, new AbortController().signal), /malformed status line/);
  const ac = new AbortController();
  const p = openStream(new URL(`http://127.0.0.1:${port}/`), {}, ac.signal);
  setTimeout(() => ac.abort(), 50);
  await t.rejects(p, { name: 'AbortError' });
});
