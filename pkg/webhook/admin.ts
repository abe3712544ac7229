// The controller's plain-HTTP admin app: /healthz (process alive), /readyz (serving and not
// shutting down), /metrics (Prometheus).
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { PinoLogger } from '../log/index.js';
import { exposition, type Registry } from '../metrics/registry.js';

export function buildAdminApp(o: { registry: Registry; isReady: () => boolean; logger: PinoLogger }): FastifyInstance {
  const app = Fastify({ loggerInstance: o.logger, logController: new LogController({ disableRequestLogging: true }), forceCloseConnections: true }) as unknown as FastifyInstance;
  app.get('/healthz', async () => 'ok\n');
  app.get('/readyz', async (_req, reply) => (o.isReady() ? reply.send('ready\n') : reply.code(503).send('not ready\n')));
  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await exposition(o.registry);
    return reply.type(contentType).send(body);
  });
  return app;
}
