// A lean HTTP/1.1-over-TLS load generator for the webhook bench: the request (headers and
// body) is serialized once, each connection keeps exactly one request in flight (closed
// loop), and a response is recognised by its Content-Length alone. node:https with an Agent
// costs the client several times what the server spends on a review, so with it the bench
// measured the client.
import { connect, type TLSSocket } from 'node:tls';

export interface LeanConnection {
  /** Send the prepared request; resolves with the HTTP status once the whole response is in. */
  send(): Promise<number>;
  close(): void;
}

const HEADER_END = Buffer.from('\r\n\r\n');

export function prepareRequest(path: string, body: Buffer): Buffer {
  const head = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/** Parse one response at the start of `buf`: [status, total length] or undefined when incomplete. */
export function parseResponse(buf: Buffer): [number, number] | undefined {
  const end = buf.indexOf(HEADER_END);
  if (end < 0) return undefined;
  const head = buf.toString('latin1', 0, end);
  const status = Number(head.slice(9, 12));
  const m = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (!m) throw new Error(`response without content-length: ${head.slice(0, 200)}`);
  const total = end + 4 + Number(m[1]);
  return buf.length >= total ? [status, total] : undefined;
}

export function leanConnect(port: number, request: Buffer): Promise<LeanConnection> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      socket.setNoDelay(true);
      resolve({
        send: () =>
          new Promise<number>((res, rej) => {
            if (closed) return rej(closed);
            waiter = { res, rej };
            socket.write(request);
          }),
        close: () => socket.destroy(),
      });
    });
    let pending: Buffer | null = null;
    let waiter: { res: (s: number) => void; rej: (e: Error) => void } | null = null;
    let closed: Error | null = null;
    socket.on('data', (chunk: Buffer) => {
      pending = pending ? Buffer.concat([pending, chunk]) : chunk;
      const r = parseResponse(pending);
      if (!r) return;
      pending = r[1] < pending.length ? pending.subarray(r[1]) : null;
      const w = waiter;
      waiter = null;
      w?.res(r[0]);
    });
    const fail = (e: Error) => {
      closed ??= e;
      const w = waiter;
      waiter = null;
      if (w) w.rej(e);
      else reject(e);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  });
}
