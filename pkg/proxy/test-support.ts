// Helpers for the proxy's tests: a proxy on loopback in --mode none whose original
// destination is set by the test, free ports, small TCP peers.
import { createHash } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { proxyConfigFrom, type PodInfo, type ProxyFlags } from '../api/proxy-config.js';
import { createLogger } from '../log/index.js';
import type { Authorizer } from '../policy/types.js';
import { startProxy, type RunningProxy } from './index.js';
import { loadNativeCaps, noNative } from './native-bridge.js';
import type { AccessLog, Endpoint } from './types.js';

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface TestProxy {
  proxy: RunningProxy;
  inbound: number;
  outbound: number;
  admin: number;
  /** Where the next accepted connection goes. */
  dst: Endpoint;
  close(): Promise<void>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

export async function startTestProxy(overrides: Partial<Record<keyof ProxyFlags, unknown>> = {}, o: { authorizer?: Authorizer; native?: boolean; accessLog?: AccessLog; pod?: Partial<PodInfo> } = {}): Promise<TestProxy> {
  const [inbound, outbound, admin] = [await freePort(), await freePort(), await freePort()];
  const config = proxyConfigFrom({ mode: 'none', inboundPort: inbound, outboundPort: outbound, adminPort: admin, relay: 'js', logLevel: 'silent', ...overrides }, o.pod);
  const tp: TestProxy = {
    inbound,
    outbound,
    admin,
    dst: { address: '127.0.0.1', port: 1 },
    proxy: undefined as unknown as RunningProxy,
    close: () => tp.proxy.close(),
    async metric(name, labels = {}) {
      const m = await tp.proxy.metrics.registry.getSingleMetric(name)?.get();
      let sum = 0;
      for (const v of m?.values ?? []) {
        if ((v as { metricName?: string }).metricName && (v as { metricName?: string }).metricName !== name) continue;
        if (Object.entries(labels).every(([k, x]) => String((v.labels as Record<string, unknown>)[k]) === x)) sum += v.value;
      }
      return sum;
    },
  };
  tp.proxy = await startProxy(config, {
    log: createLogger('proxy-test', 'silent'),
    native: o.native ? loadNativeCaps() : noNative(),
    resolveDst: () => tp.dst,
    hosts: { host4: '127.0.0.1', host6: null },
    adminHost: '127.0.0.1',
    ...(o.authorizer ? { authorizer: o.authorizer } : {}),
    ...(o.accessLog ? { accessLog: o.accessLog } : {}),
  });
  return tp;
}

export function listen(handler: (s: Socket) => void): Promise<{ server: Server; port: number; accepted: () => number; close: () => Promise<void> }> {
  let n = 0;
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    n++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    handler(s);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({
        server,
        port: (server.address() as { port: number }).port,
        accepted: () => n,
        close: () => {
          for (const s of sockets) s.destroy();
          return new Promise((r) => server.close(() => r()));
        },
      }),
    );
  });
}

export function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Connect and read to the end: for connections the proxy refuses (the RST may even beat
 * the connect callback). */
export function dialAndRead(port: number, send?: string): Promise<{ data: Buffer; error: string | undefined }> {
  const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  if (send !== undefined) s.write(send);
  return readAll(s);
}

/** Everything `s` sends until EOF (or the error that ended it). */
export function readAll(s: Socket): Promise<{ data: Buffer; error: string | undefined }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let error: string | undefined;
    s.on('data', (b: Buffer) => parts.push(b));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on('close', () => resolve({ data: Buffer.concat(parts), error }));
  });
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export function deterministicBytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
