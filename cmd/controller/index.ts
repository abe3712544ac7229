// `weft controller`: the admission webhook (HTTPS, POST /inject) with TLS reload, the admin
// port (/healthz, /readyz, /metrics) and, when built in, the policy server's routes.
import { readFileSync } from 'node:fs';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { flag, parseFlags } from '../../pkg/cli/flags.js';
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import { createLogger, LOG_LEVELS, type Logger } from '../../pkg/log/index.js';
import { defaultValues, parseValuesYaml } from '../../pkg/api/values.js';
import { createInjectorMetrics } from '../../pkg/metrics/injector.js';
import { buildAdminApp } from '../../pkg/webhook/admin.js';
import { buildControllerApp } from '../../pkg/webhook/app.js';
import { readKeyPair, watchKeyPair } from '../../pkg/webhook/tls.js';
import { weftVersion } from '../../pkg/version/index.js';

const specs = {
  'tls-cert': { type: 'string' as const, help: 'serving certificate (PEM), reloaded when it changes' },
  'tls-key': { type: 'string' as const, help: 'serving key (PEM), reloaded when it changes' },
  port: { type: 'string' as const, help: 'HTTPS webhook port (default 9443)' },
  'admin-port': { type: 'string' as const, help: 'admin port: /healthz, /readyz, /metrics (default 9090)' },
  address: { type: 'string' as const, help: 'listen address (default 0.0.0.0)' },
  values: { type: 'string' as const, help: 'chart values YAML (injection settings)' },
  namespace: { type: 'string' as const, help: "the controller's own namespace (never injected); env WEFT_NAMESPACE or POD_NAMESPACE" },
  'log-level': { type: 'string' as const, help: 'trace|debug|info|warn|error|silent (default info)' },
};

const schema = z
  .object({
    tlsCert: z.string({ error: 'is required (path to the PEM certificate)' }).min(1),
    tlsKey: z.string({ error: 'is required (path to the PEM key)' }).min(1),
    port: flag.port().default(9443),
    adminPort: flag.port().default(9090),
    address: z.string().min(1).default('0.0.0.0'),
    values: z.string().optional(),
    namespace: z.string().min(1).optional(),
    logLevel: z.enum(LOG_LEVELS).default('info'),
  })
  .strict();

/** The policy engineer's routes, if that module is built into this weft. */
async function loadPolicyPlugin(log: Logger): Promise<FastifyPluginAsync | undefined> {
  const path = '../../pkg/policy/server.js';
  try {
    const mod = (await import(path)) as { policyPlugin?: FastifyPluginAsync };
    if (typeof mod.policyPlugin !== 'function') {
      log.warn('pkg/policy/server.js has no policyPlugin export; policy routes disabled');
      return undefined;
    }
    return mod.policyPlugin;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String(e).includes('policy/server.js')) {
      log.info('policy server not built in; serving injection only');
    } else log.error({ err: (e as Error).message }, 'policy server failed to load; serving injection only');
    return undefined;
  }
}

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags('controller', 'The weft admission webhook (POST /inject over HTTPS) and admin endpoints.', specs, schema, argv);
  if (!flags) return 0;
  const log = createLogger('controller', flags.logLevel);
  let values = defaultValues();
  if (flags.values !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.values, 'utf8');
    } catch (e) {
      throw new WeftError(ErrorCodes.BAD_CONFIG, `--values ${flags.values}: ${(e as Error).message}`, { field: '--values' });
    }
    values = parseValuesYaml(text, flags.values);
  }
  const namespace = flags.namespace ?? process.env.WEFT_NAMESPACE ?? process.env.POD_NAMESPACE;
  const tls = await readKeyPair(flags.tlsCert, flags.tlsKey);
  const metrics = createInjectorMetrics();
  const config = Object.freeze({ values, version: weftVersion(), controllerNamespace: namespace });

  const policyPlugin = await loadPolicyPlugin(log);
  const app = await buildControllerApp({
    tls,
    config,
    metrics,
    logger: log,
    plugins: policyPlugin ? [policyPlugin] : [],
    pluginOptions: { namespace, values, registry: metrics.registry, logger: log },
  });
  let ready = false;
  const admin = buildAdminApp({ registry: metrics.registry, isReady: () => ready, logger: log });
  await app.listen({ port: flags.port, host: flags.address });
  await admin.listen({ port: flags.adminPort, host: flags.address });
  const watcher = watchKeyPair(tls, { certFile: flags.tlsCert, keyFile: flags.tlsKey, log, pollMs: 30_000, apply: (p) => app.server.setSecureContext(p) });
  ready = true;
  log.info({ port: flags.port, adminPort: flags.adminPort, namespace, policy: policyPlugin !== undefined }, 'weft controller serving');

  return new Promise<number>((resolve) => {
    const stop = async (signal: string) => {
      if (!ready) return;
      ready = false;
      log.info({ signal }, 'shutting down: finishing in-flight reviews');
      watcher.close();
      await app.close();
      await admin.close();
      resolve(0);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
}
