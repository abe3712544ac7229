// Test helpers for the native relay (used by pkg/native and e2e/native tests and the bench):
// loopback servers, a relaying proxy built from the facade, and deterministic data streams.
import { createHash } from 'node:crypto';
import net from 'node:net';
import type { RelayHandle, RelayResult } from '../../addon/index.js';
import { connectSocket, relaySockets } from './index.js';

export interface Started {
  server: net.Server;
  port: number;
  close(): Promise<void>;
}

/** A server on 127.0.0.1 (or `host`) that tracks its sockets so close() also destroys them. */
export async function startServer(onConn: (s: net.Socket) => void, host = '127.0.0.1', allowHalfOpen = true): Promise<Started> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Echoes every byte back; half-closes when the client does. */
export function startEcho(host = '127.0.0.1'): Promise<Started> {
  return startServer((s) => s.pipe(s), host);
}

/** Hashes what it receives; when the client half-closes, answers with the hex SHA-256 and ends. */
export function startHashSink(host = '127.0.0.1'): Promise<Started> {
  return startServer((s) => {
    const h = createHash('sha256');
    s.on('data', (d: Buffer) => h.update(d));
    s.on('end', () => s.end(h.digest('hex')));
  }, host);
}

export interface RelayProxy extends Started {
  /** One entry per relayed connection, in accept order. */
  relays: Array<{ handle: RelayHandle; result: Promise<RelayResult> }>;
  /** Resolves when `n` connections have been handed to the relay. */
  waitFor(n: number): Promise<void>;
}

export interface ProxyOptions {
  idleTimeoutMs?: number;
  pipeSize?: number;
  /** Bytes to read from the client before relaying; they are passed as head. */
  peekBytes?: number;
  /** Written to the client first (as tail). */
  tail?: Buffer;
}

/** A proxy on 127.0.0.1 relaying every connection to 127.0.0.1:upstreamPort with the
 * native connect and relay, handing sockets over the way the real proxy does. */
export async function startRelayProxy(upstreamPort: number, opts: ProxyOptions = {}): Promise<RelayProxy> {
  const relays: RelayProxy['relays'] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const started = await startServer((down) => {
    void (async () => {
      down.pause();
      let head: Buffer | null = null;
      if (opts.peekBytes) head = await readExactly(down, opts.peekBytes);
      const up = await connectSocket({ address: '127.0.0.1', port: upstreamPort, timeoutMs: 5000 });
      up.pause();
      const r = relaySockets(down, up, {
        idleTimeoutMs: opts.idleTimeoutMs ?? 0,
        ...(opts.pipeSize === undefined ? {} : { pipeSize: opts.pipeSize }),
        head,
        tail: opts.tail ?? null,
      });
      relays.push(r);
      for (const w of waiters.filter((x) => relays.length >= x.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    })().catch(() => down.destroy());
  });
  return {
    ...started,
    relays,
    waitFor: (n) => (relays.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

/** Reads exactly n bytes (leaving the rest buffered in the socket). */
export function readExactly(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tryRead = (): void => {
      const b = s.read(n) as Buffer | null;
      if (b === null) return;
      s.off('readable', tryRead);
      s.off('error', reject);
      resolve(b);
    };
    s.on('readable', tryRead);
    s.on('error', reject);
    tryRead();
  });
}

/** Connects to 127.0.0.1:port (allowHalfOpen so tests can half-close). */
export function dial(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host, allowHalfOpen: true }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Everything the socket sends until EOF, or the error that ended it. */
export function collect(s: net.Socket): Promise<{ data: Buffer; error: (Error & { code?: string }) | null }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.once('end', () => resolve({ data: Buffer.concat(parts), error: null }));
    s.once('error', (e) => resolve({ data: Buffer.concat(parts), error: e }));
  });
}

/** A stream of `total` bytes cut from `seed` (random bytes): chunk i is the seed rotated by
 * i·7919 bytes, precomputed for the first 16 rotations, so sending costs no copy while
 * lost, repeated or reordered chunks still change the hash. */
export function makeChunks(seed: Buffer, total: number, chunk = 1 << 20): () => Buffer | null {
  const variants = Array.from({ length: 16 }, (_, i) => {
    const rot = (i * 7919) % seed.length;
    return Buffer.concat([seed.subarray(rot), seed.subarray(0, rot)]).subarray(0, Math.min(chunk, seed.length));
  });
  let sent = 0;
  let i = 0;
  return () => {
    if (sent >= total) return null;
    const b = variants[i++ % variants.length]!;
    const n = Math.min(b.length, total - sent);
    sent += n;
    return b.subarray(0, n);
  };
}

/** Writes the chunks with backpressure, hashing them; half-closes at the end. */
export async function sendAll(s: net.Socket, next: () => Buffer | null): Promise<string> {
  const h = createHash('sha256');
  for (let b = next(); b !== null; b = next()) {
    h.update(b);
    if (!s.write(b)) await new Promise<void>((r, j) => {
      s.once('drain', r);
      s.once('error', j);
    });
  }
  s.end();
  return h.digest('hex');
}

/** Hashes everything received until EOF. */
export function hashUntilEnd(s: net.Socket): Promise<{ hex: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let bytes = 0;
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      h.update(d);
    });
    s.once('end', () => resolve({ hex: h.digest('hex'), bytes }));
    s.once('error', reject);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
