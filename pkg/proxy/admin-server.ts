// A minimal HTTP/1.1 server for the admin port, on node:net with the proxy's own strict head
// parser (http1/head.ts). node:http would be the obvious choice, but importing it pulls in
// http2, tls, crypto, zlib and worker_threads: ~11 MiB of RSS in every meshed pod, for six
// fixed GET/POST routes that kubelet and Prometheus call a few times a second.
//
// What it speaks: requests one at a time per connection (pipelined ones wait their turn),
// keep-alive unless `Connection: close` or HTTP/1.0, Content-Length bodies skipped (no route
// reads one), chunked request bodies refused (411), heads over 16 KiB refused (431).
import { createServer, type Server, type Socket } from 'node:net';
import { HttpParseError, parseHead } from './http1/head.js';

export interface AdminRequest {
  method: string;
  /** The request target as sent (path and query). */
  url: string;
  remoteAddress: string | undefined;
}

export interface AdminResponse {
  status: number;
  contentType: string;
  body: string;
}

const MAX_HEAD = 16 * 1024;
const MAX_BODY = 64 * 1024;
const KEEPALIVE_MS = 60_000;
const REASONS: Record<number, string> = { 200: 'OK', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 411: 'Length Required', 413: 'Content Too Large', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 503: 'Service Unavailable' };

function responseBytes(r: AdminResponse, head: boolean, close: boolean): Buffer {
  const body = Buffer.from(r.body, 'utf8');
  const h = `HTTP/1.1 ${r.status} ${REASONS[r.status] ?? 'Status'}\r\ncontent-type: ${r.contentType}\r\ncontent-length: ${body.length}\r\n${close ? 'connection: close\r\n' : ''}\r\n`;
  return head ? Buffer.from(h, 'latin1') : Buffer.concat([Buffer.from(h, 'latin1'), body]);
}

const plain = (status: number, body: string): AdminResponse => ({ status, contentType: 'text/plain; charset=utf-8', body });

export interface AdminHttpServer {
  readonly server: Server;
  /** Stop accepting; idle connections close now, a request being answered gets `graceMs`. */
  close(graceMs: number): Promise<void>;
}

export function adminHttpServer(handle: (r: AdminRequest) => Promise<AdminResponse>): AdminHttpServer {
  const conns = new Map<Socket, { busy: boolean }>();
  let closing = false;
  const server = createServer({ noDelay: true }, (s) => {
    const state = { busy: false };
    conns.set(s, state);
    s.setTimeout(KEEPALIVE_MS, () => s.destroy());
    s.on('error', () => {});
    s.on('close', () => conns.delete(s));
    let buf: Buffer = Buffer.alloc(0);
    let skip = 0; // body bytes of the current request still to discard

    const fail = (status: number, body: string): void => {
      s.end(responseBytes(plain(status, body), false, true));
      s.removeListener('data', onData);
    };

    const next = (): void => {
      if (state.busy || s.destroyed) return;
      if (skip > 0) {
        const n = Math.min(skip, buf.length);
        skip -= n;
        buf = buf.subarray(n);
        if (skip > 0) return;
      }
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > MAX_HEAD) fail(431, 'request head too large\n');
        return;
      }
      const raw = buf.subarray(0, end + 4);
      buf = buf.subarray(end + 4);
      let head;
      try {
        head = parseHead('request', raw);
      } catch (e) {
        return fail(400, `bad request: ${e instanceof HttpParseError ? e.reason : 'unparseable'}\n`);
      }
      if (head.chunked) return fail(411, 'chunked request bodies are not accepted here\n');
      if (head.contentLength > MAX_BODY) return fail(413, 'request body too large\n');
      skip = Math.max(head.contentLength, 0);
      const sp = raw.indexOf(32);
      const url = raw.toString('latin1', sp + 1, raw.indexOf(32, sp + 1));
      state.busy = true;
      void handle({ method: head.method, url, remoteAddress: s.remoteAddress }).then((r) => {
        state.busy = false;
        if (s.destroyed) return;
        const close = head.close || closing;
        s.write(responseBytes(r, head.method === 'HEAD', close));
        if (close) return void s.end();
        next();
      });
    };
    const onData = (b: Buffer): void => {
      buf = buf.length === 0 ? b : Buffer.concat([buf, b]);
      next();
    };
    s.on('data', onData);
  });
  return {
    server,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        closing = true;
        if (!server.listening) return resolve();
        for (const [s, st] of conns) if (!st.busy) s.destroy();
        const force = setTimeout(() => {
          for (const s of conns.keys()) s.destroy();
        }, graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
