// The controller's HTTPS app: POST /inject (AdmissionReview v1) plus whatever plugins are
// given (the policy server registers its routes this way). Built here, listened on by cmd/.
import type { Server as HttpsServer } from 'node:https';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { Logger } from '../log/index.js';
import type { InjectConfig } from '../inject/index.js';
import type { InjectorMetrics } from '../metrics/injector.js';
import type { KubeEvent } from '../api/k8s-types.js';
import { malformed, review } from './admission.js';
import type { KeyPair } from './tls.js';

export interface ControllerAppOptions {
  tls: KeyPair;
  config: InjectConfig;
  metrics: InjectorMetrics;
  logger: Logger;
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
  const app = Fastify({
    https: { cert: o.tls.cert, key: o.tls.key },
    loggerInstance: o.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: o.bodyLimit ?? 8 * 1024 * 1024,
    // On close, idle keep-alive connections are dropped; busy ones finish their request.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  }) as unknown as ControllerApp;
  const recordEvent = o.recordEvent ?? ((event: KubeEvent) => o.logger.info({ event }, 'event'));

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

  const isDraining = o.isDraining;
  if (isDraining) {
    app.addHook('onRequest', async (_req, reply) => {
      if (isDraining()) reply.header('connection', 'close');
    });
  }

  app.post('/inject', async (req, reply) => {
    const started = process.hrtime.bigint();
    const out = review(req.body, o.config);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    o.metrics.review(out.result, out.reason, seconds);
    const fields = { ns: out.ns, pod: out.pod, result: out.result, reason: out.reason || undefined, code: out.result === 'refused' ? 'WEFT_ERR_BAD_ANNOTATION' : undefined };
    if (out.httpStatus === 400) req.log.warn({ result: out.result, msg400: out.message }, 'malformed AdmissionReview');
    else if (out.result === 'error') req.log.error(fields, out.message ?? 'injection failed');
    else if (out.pod !== undefined) req.log.info(fields, out.message ?? out.result);
    if (out.event) recordEvent(out.event);
    return reply.code(out.httpStatus).send(out.body);
  });

  for (const plugin of o.plugins ?? []) await app.register(plugin, o.pluginOptions ?? {});
  return app;
}
