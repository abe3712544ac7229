// The admin server (fastify) on --admin-port, bound to all addresses so kubelet reaches it:
// /ready, /live, /metrics, /config, POST /shutdown (loopback peers only), /app-health/….
import Fastify, { LogController } from 'fastify';
import { PROBE_KINDS, publicConfig, type ProxyConfig } from '../api/proxy-config.js';
import type { Logger } from '../log/index.js';
import { exposition, type Registry } from '../metrics/registry.js';
import { isLoopback, unmap } from './addr.js';
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

export function isLoopbackPeer(address: string | undefined): boolean {
  return address !== undefined && isLoopback(unmap(address));
}

export function buildAdmin(d: AdminDeps) {
  // Request logging off: kubelet probes every few seconds would drown the decisions.
  const probeHosts = ['127.0.0.1', ...d.config.pod.ips];
  const app = Fastify({ loggerInstance: d.log, logController: new LogController({ disableRequestLogging: true }) });
  app.get('/ready', async (_req, reply) => reply.code(d.ready() ? 200 : 503).type('text/plain').send(d.ready() ? 'ready\n' : 'not ready\n'));
  app.get('/live', async (_req, reply) => reply.type('text/plain').send('live\n'));
  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await exposition(d.registry);
    return reply.type(contentType).send(body);
  });
  app.get('/config', async () => ({ config: publicConfig(d.config), ...d.describe() }));
  app.post('/shutdown', async (req, reply) => {
    if (!isLoopbackPeer(req.socket.remoteAddress)) return reply.code(403).type('text/plain').send('shutdown is allowed from loopback only\n');
    setImmediate(d.shutdown);
    return reply.type('text/plain').send('draining\n');
  });
  app.get<{ Params: { container: string; kind: string } }>('/app-health/:container/:kind', async (req, reply) => {
    const { container, kind } = req.params;
    if (!(PROBE_KINDS as readonly string[]).includes(kind)) return reply.code(404).type('text/plain').send(`unknown probe kind "${kind}"; allowed: ${PROBE_KINDS.join(', ')}\n`);
    const probe = d.config.appProbes[`${container}/${kind}`];
    if (!probe) return reply.code(404).type('text/plain').send(`no ${kind} probe configured for container "${container}"\n`);
    const r = await runProbeOn(probe, probeHosts);
    return reply.code(r.status).type('text/plain').send(`${r.detail}\n`);
  });
  return app;
}
