// The admin server on --admin-port, bound to all addresses so kubelet reaches it:
// /ready, /live, /metrics, /config, POST /shutdown (loopback peers only), /app-health/….
// Not fastify, not even node:http: six fixed routes need no router, and either would be a
// large share of an idle proxy's memory and startup (docs/performance.md); admin-server.ts
// speaks just enough HTTP/1.1 over node:net.
import type { Server } from 'node:net';
import { PROBE_KINDS, publicConfig, type ProxyConfig } from '../api/proxy-flags.js';
import type { Logger } from '../log/index.js';
import { exposition, type Registry } from '../metrics/registry.js';
import { isLoopback, unmap } from './addr.js';
import { adminHttpServer } from './admin-server.js';
import { runProbeOn } from './app-health.js';

export interface AdminDeps {
  config: Readonly<ProxyConfig>;
  log: Logger;
  registry: Registry;
  /** True once listeners are up and config/policy loaded, false again while draining. */
  ready: () => boolean;
  /** Extra state for GET /config (policy source, native capabilities). */
  describe: () => Record<string, unknown>;
  shutdown: () => void;
}

/** What a route answers; written to the socket by the server, returned as is by inject(). */
export interface AdminReply {
  status: number;
  contentType: string;
  body: string;
}

export interface InjectResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  json(): unknown;
}

export interface AdminServer {
  readonly server: Server;
  listen(o: { host: string; port: number }): Promise<void>;
  close(): Promise<void>;
  /** Answer a request without a socket (tests; `remoteAddress` defaults to 127.0.0.1). */
  inject(r: { method?: string; url: string; remoteAddress?: string }): Promise<InjectResult>;
}

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';
const text = (status: number, body: string): AdminReply => ({ status, contentType: TEXT, body });

export function isLoopbackPeer(address: string | undefined): boolean {
  return address !== undefined && isLoopback(unmap(address));
}

export function buildAdmin(d: AdminDeps): AdminServer {
  const probeHosts = ['127.0.0.1', ...d.config.pod.ips];

  async function route(method: string, url: string, remoteAddress: string | undefined): Promise<AdminReply> {
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const get = method === 'GET' || method === 'HEAD';
    if (get && path === '/ready') return d.ready() ? text(200, 'ready\n') : text(503, 'not ready\n');
    if (get && path === '/live') return text(200, 'live\n');
    if (get && path === '/metrics') {
      const { contentType, body } = await exposition(d.registry);
      return { status: 200, contentType, body };
    }
    if (get && path === '/config') return { status: 200, contentType: JSON_TYPE, body: JSON.stringify({ config: publicConfig(d.config), ...d.describe() }) };
    if (method === 'POST' && path === '/shutdown') {
      if (!isLoopbackPeer(remoteAddress)) return text(403, 'shutdown is allowed from loopback only\n');
      setImmediate(d.shutdown);
      return text(200, 'draining\n');
    }
    if (get && path.startsWith('/app-health/')) {
      const parts = path.slice('/app-health/'.length).split('/');
      if (parts.length === 2 && parts[0] && parts[1]) return appHealth(decode(parts[0]), decode(parts[1]));
    }
    return text(404, `Route ${method}:${path} not found\n`);
  }

  async function appHealth(container: string, kind: string): Promise<AdminReply> {
    if (!(PROBE_KINDS as readonly string[]).includes(kind)) return text(404, `unknown probe kind "${kind}"; allowed: ${PROBE_KINDS.join(', ')}\n`);
    const probe = d.config.appProbes[`${container}/${kind}`];
    if (!probe) return text(404, `no ${kind} probe configured for container "${container}"\n`);
    const r = await runProbeOn(probe, probeHosts);
    return text(r.status, `${r.detail}\n`);
  }

  async function answer(method: string, url: string, remoteAddress: string | undefined): Promise<AdminReply> {
    try {
      return await route(method, url, remoteAddress);
    } catch (e) {
      d.log.error({ err: e, url }, 'admin request failed');
      return text(500, 'internal error\n');
    }
  }

  // Request logging off: kubelet probes every few seconds would drown the decisions.
  const http = adminHttpServer((r) => answer(r.method, r.url, r.remoteAddress));
  const server = http.server;

  return {
    server,
    listen: (o) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: o.host, port: o.port }, () => {
          server.off('error', reject);
          resolve();
        });
      }),
    // Keep-alive connections (kubelet's, Prometheus') would hold close() open: idle ones go
    // now, one still answering (a slow app probe) gets a moment to finish.
    close: () => http.close(1000),
    async inject(r) {
      const method = r.method ?? 'GET';
      const a = await answer(method, r.url, r.remoteAddress ?? '127.0.0.1');
      return { statusCode: a.status, headers: { 'content-type': a.contentType }, body: a.body, json: () => JSON.parse(a.body) as unknown };
    },
  };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
