// Runs the app's original kubelet probe from inside the pod, so probes keep working when
// policy denies traffic by default: the injector points kubelet at
// GET :15020/app-health/<container>/<kind> and the proxy replays the real probe here.
import { connect, isIPv6 } from 'node:net';
import type { AppProbe } from '../api/proxy-config.js';

export interface ProbeResult {
  /** The status to hand kubelet: the app's own for httpGet, 200/503 for tcpSocket and grpc. */
  status: number;
  detail: string;
  /** The app could not be reached at all (worth trying the next address). */
  unreachable?: boolean;
}

/** Try 127.0.0.1 first, then the pod IPs: an app may bind only its pod address. */
export async function runProbeOn(probe: AppProbe, hosts: readonly string[]): Promise<ProbeResult> {
  let last: ProbeResult = { status: 503, detail: 'no address to probe', unreachable: true };
  for (const host of hosts) {
    last = await runProbe(probe, host);
    if (!last.unreachable) return last;
  }
  return last;
}

const DEFAULT_TIMEOUT_MS = 1000;

// node:https (and OpenSSL with it) is loaded only for an HTTPS probe: it costs an idle
// proxy several MiB, and most probes are plain HTTP or TCP.
let httpsRequest: typeof import('node:https').request | null = null;
// node:http2 likewise, only for a grpc probe.
let http2: typeof import('node:http2') | null = null;

export async function runProbe(probe: AppProbe, host: string): Promise<ProbeResult> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000 || DEFAULT_TIMEOUT_MS;
  if ('tcpSocket' in probe) {
    return new Promise((resolve) => {
      const s = connect({ host: probe.tcpSocket.host ?? host, port: probe.tcpSocket.port });
      const finish = (r: ProbeResult) => {
        clearTimeout(timer);
        s.destroy();
        resolve(r);
      };
      const timer = setTimeout(() => finish({ status: 503, detail: 'tcp connect timed out' }), timeoutMs);
      s.once('connect', () => finish({ status: 200, detail: 'tcp connect ok' }));
      s.once('error', (e: NodeJS.ErrnoException) => finish({ status: 503, detail: `tcp connect: ${e.code ?? e.message}`, unreachable: e.code === 'ECONNREFUSED' }));
    });
  }
  if ('grpc' in probe) return grpcCheck(probe.grpc.port, probe.grpc.service, host, timeoutMs);
  const g = probe.httpGet;
  const headers: Record<string, string> = { 'user-agent': 'kube-probe/weft' };
  for (const h of g.httpHeaders) headers[h.name.toLowerCase()] = h.value;
  if (g.scheme !== 'HTTPS') return httpStatus(g.host ?? host, g.port, g.path, headers, timeoutMs);
  httpsRequest ??= (await import('node:https')).request;
  const req = httpsRequest;
  return new Promise((resolve) => {
    const r = req({ host: g.host ?? host, port: g.port, path: g.path, method: 'GET', headers, timeout: timeoutMs, agent: false, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 502, detail: `http ${res.statusCode}` }));
      res.on('error', () => resolve({ status: 503, detail: 'http response error' }));
    });
    r.on('timeout', () => r.destroy(Object.assign(new Error('probe timed out'), { code: 'ETIMEDOUT' })));
    r.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 503, detail: `http: ${e.code ?? e.message}`, unreachable: e.code === 'ECONNREFUSED' }));
    r.end();
  });
}

/**
 * A plain-HTTP probe as kubelet sends it (GET, Host, User-Agent, the probe's headers,
 * `Connection: close`) over node:net: only the status line is read. node:http would cost
 * every proxy ~14 MiB of RSS for this one request shape (docs/proxy.md).
 */
function httpStatus(host: string, port: number, path: string, headers: Record<string, string>, timeoutMs: number): Promise<ProbeResult> {
  const hostHeader = `${isIPv6(host) ? `[${host}]` : host}${port === 80 ? '' : `:${port}`}`;
  const lines = [`GET ${path} HTTP/1.1`, `host: ${headers.host ?? hostHeader}`];
  for (const [k, v] of Object.entries(headers)) if (k !== 'host' && k !== 'connection') lines.push(`${k}: ${v}`);
  const request = `${lines.join('\r\n')}\r\nconnection: close\r\n\r\n`;
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let got = '';
    const finish = (r: ProbeResult): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ status: 503, detail: 'http: ETIMEDOUT' }), timeoutMs);
    s.once('connect', () => s.write(request, 'latin1'));
    s.on('data', (b: Buffer) => {
      got += b.toString('latin1');
      const eol = got.indexOf('\r\n');
      if (eol < 0) {
        if (got.length > 8192) finish({ status: 502, detail: 'http: no status line' });
        return;
      }
      const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(got.slice(0, eol));
      finish(m ? { status: Number(m[1]), detail: `http ${m[1]}` } : { status: 502, detail: 'http: malformed status line' });
    });
    s.once('end', () => finish({ status: 502, detail: 'http: closed before a status line' }));
    s.once('error', (e: NodeJS.ErrnoException) => finish({ status: 503, detail: `http: ${e.code ?? e.message}`, unreachable: e.code === 'ECONNREFUSED' }));
  });
}

// grpc.health.v1: HealthCheckRequest { string service = 1; }, HealthCheckResponse
// { ServingStatus status = 1; } with UNKNOWN 0, SERVING 1, NOT_SERVING 2, SERVICE_UNKNOWN 3.
const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];
const GRPC_OK = '0';

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** One gRPC message frame (uncompressed) carrying HealthCheckRequest{service}. */
export function encodeHealthCheckRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const msg = name.length ? Buffer.concat([Buffer.from([0x0a, ...varint(name.length)]), name]) : Buffer.alloc(0);
  const frame = Buffer.alloc(5 + msg.length);
  frame.writeUInt32BE(msg.length, 1);
  msg.copy(frame, 5);
  return frame;
}

function readVarint(b: Buffer, at: number): [number, number] {
  let n = 0;
  let shift = 0;
  for (let i = at; i < b.length && shift < 35; i++, shift += 7) {
    n += (b[i]! & 0x7f) * 2 ** shift;
    if ((b[i]! & 0x80) === 0) return [n, i + 1];
  }
  throw new Error('truncated varint');
}

/** The status field of the first HealthCheckResponse frame in `body` (0 when absent, as proto3 says). */
export function decodeHealthCheckResponse(body: Buffer): number {
  if (body.length < 5) throw new Error('no response message');
  if (body[0] !== 0) throw new Error('compressed response message');
  const len = body.readUInt32BE(1);
  const msg = body.subarray(5, 5 + len);
  if (msg.length < len) throw new Error('truncated response message');
  let status = 0;
  for (let at = 0; at < msg.length; ) {
    const [tag, next] = readVarint(msg, at);
    const wire = tag & 7;
    if (wire === 0) {
      const [v, after] = readVarint(msg, next);
      if (tag >>> 3 === 1) status = v;
      at = after;
    } else if (wire === 2) {
      const [n, after] = readVarint(msg, next);
      at = after + n;
    } else if (wire === 1) at = next + 8;
    else if (wire === 5) at = next + 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return status;
}

function percentDecoded(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The kubelet's grpc probe: Health/Check over plaintext HTTP/2; success only for SERVING. */
async function grpcCheck(port: number, service: string, host: string, timeoutMs: number): Promise<ProbeResult> {
  http2 ??= await import('node:http2');
  const h2 = http2;
  return new Promise((resolve) => {
    const authority = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const session = h2.connect(authority);
    let done = false;
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      session.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ status: 503, detail: 'grpc health check timed out' }), timeoutMs);
    // A refused connection cancels the stream too; its cause is the socket's error.
    const failed = (e: NodeJS.ErrnoException) => {
      const cause = (e.cause as NodeJS.ErrnoException | undefined) ?? e;
      finish({ status: 503, detail: `grpc: ${cause.code ?? cause.message}`, unreachable: cause.code === 'ECONNREFUSED' });
    };
    session.on('error', failed);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/grpc.health.v1.Health/Check',
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': `${timeoutMs}m`,
      'user-agent': 'kube-probe/weft',
    });
    let headers: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (headers = h));
    stream.on('trailers', (h) => (trailers = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', failed);
    stream.on('end', () => {
      const httpStatus = Number(headers[':status']);
      if (httpStatus !== 200) return finish({ status: 503, detail: `grpc: http status ${httpStatus}` });
      // A failed call may be trailers-only: grpc-status then comes with the headers.
      const grpcStatus = String(trailers['grpc-status'] ?? headers['grpc-status'] ?? '');
      if (grpcStatus !== GRPC_OK) {
        const msg = trailers['grpc-message'] ?? headers['grpc-message'];
        return finish({ status: 503, detail: `grpc-status ${grpcStatus || 'missing'}${msg ? ` (${percentDecoded(String(msg))})` : ''}` });
      }
      try {
        const status = decodeHealthCheckResponse(Buffer.concat(chunks));
        const name = SERVING_STATUS[status] ?? String(status);
        finish({ status: status === 1 ? 200 : 503, detail: `grpc ${name}` });
      } catch (e) {
        finish({ status: 503, detail: `grpc: ${(e as Error).message}` });
      }
    });
    stream.on('close', () => finish({ status: 503, detail: 'grpc: stream closed without a response' }));
    stream.end(encodeHealthCheckRequest(service));
  });
}
