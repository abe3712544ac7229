// The controller's HTTPS app: POST /inject (AdmissionReview v1) plus whatever plugins are
// given (the policy server registers its routes this way). Built here, listened on by cmd/.
// The HTTPS server hands every `POST /inject` with a JSON body straight to the fast path
// (inject-handler.ts); fastify serves everything else, and /inject too for app.inject().
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { PinoLogger } from '../log/index.js';
import type { InjectConfig } from '../inject/index.js';
import type { InjectorMetrics } from '../metrics/injector.js';
import type { KubeEvent } from '../api/k8s-types.js';
import { malformed } from './admission.js';
import { answerInject, fastInject, isFastInject, type InjectHandlerOptions } from './inject-handler.js';
import type { KeyPair } from './tls.js';

export interface ControllerAppOptions {
  tls: KeyPair;
  config: InjectConfig;
  metrics: InjectorMetrics;
  logger: PinoLogger;
  /** Extra route plugins (e.g. the policy server's `policyPlugin`). */
  plugins?: FastifyPluginAsync[];
  /** Options passed to every plugin. */
  pluginOptions?: Record<string, unknown>;
  /** Where skip Events go (must not block: the controller enqueues them); default: logged. */
  recordEvent?: (event: KubeEvent) => void;
  /** Largest accepted body (the API server sends at most ~3 MiB objects). */
  bodyLimit?: number;
  /** True during the shutdown delay: answers close their connection, so clients reconnect elsewhere. */
  isDraining?: () => boolean;
}

export type ControllerApp = FastifyInstance<HttpsServer>;

export async function buildControllerApp(o: ControllerAppOptions): Promise<ControllerApp> {
  const bodyLimit = o.bodyLimit ?? 8 * 1024 * 1024;
  const recordEvent = o.recordEvent ?? ((event: KubeEvent) => o.logger.info({ event }, 'event'));
  const handler: InjectHandlerOptions = { config: o.config, metrics: o.metrics, logger: o.logger, recordEvent };
  const isDraining = o.isDraining ?? (() => false);
  let closing = false;
  const fast = { closing: () => closing, draining: isDraining, bodyLimit };

  const app = Fastify({
    https: { cert: o.tls.cert, key: o.tls.key },
    serverFactory: (fastifyHandler) =>
      createHttpsServer({ cert: o.tls.cert, key: o.tls.key }, (req, res) => {
        if (isFastInject(req)) fastInject(req, res, handler, fast);
        else fastifyHandler(req, res);
      }),
    loggerInstance: o.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    // On close, idle keep-alive connections are dropped; busy ones finish their request.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  }) as unknown as ControllerApp;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) o.logger.error({ err }, 'request failed');
    if (status === 400 && err.code?.startsWith('FST_ERR_CTP')) {
      const out = malformed(`body is not valid JSON: ${err.message}`);
      o.metrics.review(out.result, out.reason, 0);
      return reply.code(400).send(out.body);
    }
    return reply.code(status).send({ error: err.name, message: err.message, code: err.code });
  });

  app.addHook('onRequest', (_req, reply, done) => {
    if (isDraining()) reply.header('connection', 'close');
    done();
  });

  // The route sees the body as text, like the fast path, so both answer alike; other
  // routes (the plugins') keep fastify's JSON parser.
  await app.register(async (scope) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    scope.post('/inject', async (req, reply) => {
      const a = answerInject(typeof req.body === 'string' ? req.body : '', handler);
      return reply.code(a.status).type('application/json; charset=utf-8').send(a.payload);
    });
  });

  for (const plugin of o.plugins ?? []) await app.register(plugin, o.pluginOptions ?? {});
  return app;
}
