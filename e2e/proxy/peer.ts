// The proxy e2e tests' TCP peers, run with `node dist/e2e/proxy/peer.js MODE …` inside a
// network namespace. Plain node:net sockets, so the tests see what an application sees.
// Servers print one JSON line per connection they finish; clients print one JSON line.
//
//   serve-banner HOST PORT BANNER    write BANNER at once, then echo; FIN after the client's
//   serve-sink HOST PORT             count + SHA-256 what arrives; after the client's FIN reply
//                                    "<sha> <n>\n" and FIN
//   serve-fin-first HOST PORT BANNER write BANNER and FIN at once, then count what still arrives
//   serve-hold HOST PORT             read and never answer; report how the client left (fin|ECONNRESET)
//   serve-http HOST PORT             HTTP/1.1 keep-alive, every request answered "hello\n"
//   banner HOST PORT                 connect, send nothing until the first bytes arrive, then
//                                    "ping\n" and read the echo: {bannerMs, banner, echo}
//   send HOST PORT NBYTES            stream NBYTES random bytes, FIN, read the reply: {sha, reply, ms}
//   fin-first HOST PORT NBYTES       read until the server's FIN, then send NBYTES and FIN: {got, sent}
//   rst HOST PORT NBYTES             send NBYTES, wait until they left, then RST: {sent}
//   dial HOST PORT                   connect and wait for what ends it: {connected, error, eof, ms}
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';

const print = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

function serve(host: string, port: number, handler: (s: Socket) => void): void {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    handler(s);
  });
  server.listen({ host, port }, () => print({ listening: port }));
}

function dial(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function readToEnd(s: Socket): Promise<{ data: Buffer; error?: string }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    s.on('data', (b: Buffer) => parts.push(b));
    s.once('end', () => resolve({ data: Buffer.concat(parts) }));
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ data: Buffer.concat(parts), error: e.code ?? e.message }));
  });
}

/** Write `n` random bytes in 1 MiB pieces, respecting backpressure; the SHA-256 of them. */
async function stream(s: Socket, n: number): Promise<string> {
  const h = createHash('sha256');
  const piece = 1 << 20;
  for (let left = n; left > 0; ) {
    const b = randomBytes(Math.min(piece, left));
    h.update(b);
    left -= b.length;
    if (!s.write(b)) await new Promise((r) => s.once('drain', r));
  }
  return h.digest('hex');
}

async function main(): Promise<void> {
  const [mode, host = '', portArg = '0', arg = ''] = process.argv.slice(2);
  const port = Number(portArg);
  switch (mode) {
    case 'serve-banner':
      return serve(host, port, (s) => {
        s.write(arg);
        s.on('data', (b: Buffer) => s.write(b));
        s.on('end', () => s.end());
      });
    case 'serve-sink':
      return serve(host, port, (s) => {
        const h = createHash('sha256');
        let n = 0;
        s.on('data', (b: Buffer) => {
          h.update(b);
          n += b.length;
        });
        s.on('end', () => {
          const sha = h.digest('hex');
          s.end(`${sha} ${n}\n`);
          print({ event: 'sink', sha, n });
        });
      });
    case 'serve-fin-first':
      return serve(host, port, (s) => {
        s.end(arg);
        let n = 0;
        s.on('data', (b: Buffer) => (n += b.length));
        s.on('end', () => print({ event: 'fin-first', got: n }));
        s.on('error', (e: NodeJS.ErrnoException) => print({ event: 'fin-first', got: n, error: e.code }));
      });
    case 'serve-hold':
      return serve(host, port, (s) => {
        let n = 0;
        s.on('data', (b: Buffer) => (n += b.length));
        s.on('end', () => {
          print({ event: 'hold', got: n, how: 'fin' });
          s.end();
        });
        s.on('error', (e: NodeJS.ErrnoException) => print({ event: 'hold', got: n, how: e.code ?? e.message }));
      });
    case 'serve-http': {
      const server = createHttpServer((req, res) => {
        req.resume();
        req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 6 }).end('hello\n')); // a fixed length: curl's size_download is then the bytes on the wire
      });
      server.keepAliveTimeout = 30_000;
      return void server.listen({ host, port }, () => print({ listening: port }));
    }
    case 'banner': {
      const s = await dial(host, port);
      const t0 = performance.now();
      const first = await new Promise<Buffer>((resolve) => s.once('data', resolve));
      const bannerMs = performance.now() - t0;
      s.write('ping\n');
      let echo = '';
      s.on('data', (b: Buffer) => {
        echo += b.toString();
        if (echo.endsWith('ping\n')) s.end();
      });
      await new Promise((r) => s.once('end', r));
      return print({ bannerMs, banner: first.toString(), echo });
    }
    case 'send': {
      const s = await dial(host, port);
      const t0 = performance.now();
      const reply = readToEnd(s);
      const sha = await stream(s, Number(arg));
      s.end();
      const r = await reply;
      return print({ sha, reply: r.data.toString().trim(), error: r.error, ms: performance.now() - t0 });
    }
    case 'fin-first': {
      const s = await dial(host, port);
      const r = await readToEnd(s);
      const sha = await stream(s, Number(arg));
      await new Promise<void>((resolve) => s.end(resolve));
      await new Promise((r) => setTimeout(r, 100));
      s.destroy();
      return print({ got: r.data.toString(), error: r.error, sent: Number(arg), sha });
    }
    case 'rst': {
      const s = await dial(host, port);
      await stream(s, Number(arg));
      // Let the bytes leave the socket buffer before the reset discards what is left.
      while (s.writableLength > 0) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 200));
      s.resetAndDestroy();
      return print({ sent: Number(arg) });
    }
    case 'dial': {
      const t0 = performance.now();
      const s = connect({ host, port, allowHalfOpen: true });
      let connected = false;
      s.once('connect', () => (connected = true));
      const r = await readToEnd(s);
      return print({ connected, error: r.error ?? null, eof: r.error === undefined, bytes: r.data.length, ms: performance.now() - t0 });
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((e: unknown) => {
  print({ error: String(e) });
  process.exit(1);
});
