// `weft controller`: the admission webhook (HTTPS, POST /inject) with TLS reload, the admin
// port (/healthz, /readyz, /metrics) and, when built in, the policy server's routes. In a
// cluster (or with --kubeconfig) skip Events go to the API server, queued so that admission
// never waits on it; without one they are logged.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { flag, parseFlags } from '../../pkg/cli/flags.js';
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import { createLogger, LOG_LEVELS, type Logger } from '../../pkg/log/index.js';
import { defaultValues, parseValuesYaml, type Values } from '../../pkg/api/values.js';
import { defaultKubeHttp, loadKubeHttp, type KubeHttp } from '../../pkg/k8s/client.js';
import { createEventQueue } from '../../pkg/k8s/events.js';
import { createInjectorMetrics } from '../../pkg/metrics/injector.js';
import { buildAdminApp } from '../../pkg/webhook/admin.js';
import { buildControllerApp } from '../../pkg/webhook/app.js';
import { readKeyPair, watchKeyPair } from '../../pkg/webhook/tls.js';
import { weftVersion } from '../../pkg/version/index.js';

/** Long enough for the endpoint removal to reach kube-proxy and the API servers' endpoint caches. */
export const DEFAULT_SHUTDOWN_DELAY_MS = 5000;

const specs = {
  'tls-cert': { type: 'string' as const, help: 'serving certificate (PEM), reloaded when it changes' },
  'tls-key': { type: 'string' as const, help: 'serving key (PEM), reloaded when it changes' },
  port: { type: 'string' as const, help: 'HTTPS webhook port (default 9443)' },
  'admin-port': { type: 'string' as const, help: 'admin port: /healthz, /readyz, /metrics (default 9090)' },
  address: { type: 'string' as const, help: 'listen address (default 0.0.0.0)' },
  values: { type: 'string' as const, help: 'chart values YAML (injection settings)' },
  namespace: { type: 'string' as const, help: "the controller's own namespace (never injected); env WEFT_NAMESPACE or POD_NAMESPACE" },
  'log-level': { type: 'string' as const, help: 'trace|debug|info|warn|error|silent (default info)' },
  kubeconfig: { type: 'string' as const, help: 'kubeconfig file for the API server (default: in-cluster service account, else $KUBECONFIG; none: no Events, no policy watch)' },
  'shutdown-delay-ms': {
    type: 'string' as const,
    help: `on SIGTERM, keep serving this long with /readyz 503 before closing, while the endpoint removal reaches every API server (default ${DEFAULT_SHUTDOWN_DELAY_MS})`,
  },
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
    kubeconfig: z.string().min(1).optional(),
    shutdownDelayMs: flag.durationMs().max(600_000, 'must be at most 600000 (10 minutes)').default(DEFAULT_SHUTDOWN_DELAY_MS),
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

/** The API client, when there is a cluster: a named kubeconfig must load; the default may be absent. */
function kubeClient(kubeconfig: string | undefined, log: Logger): KubeHttp | null {
  if (kubeconfig !== undefined) return loadKubeHttp(kubeconfig);
  return defaultKubeHttp((err) => log.warn({ err }, 'cannot load Kubernetes credentials; Events are logged, not sent'));
}

/**
 * Proxies verify the policy stream with the CA that signed this controller's certificate:
 * with policy.controllerUrl set and policy.controllerCa empty, take the ca.crt that sits next
 * to --tls-cert (the chart's Secret and cert-manager's both carry one) into the injected
 * proxies' WEFT_CONTROLLER_CA_PEM. Without one the proxies use the system CAs.
 */
function withControllerCa(values: Values, tlsCert: string, log: Logger): Values {
  if (!values.policy.controllerUrl.startsWith('https:') || values.policy.controllerCa) return values;
  const file = join(dirname(tlsCert), 'ca.crt');
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch {
    log.warn({ file }, 'no ca.crt next to --tls-cert: injected proxies verify the policy stream with the system CAs');
    return values;
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    log.warn({ file }, 'ca.crt next to --tls-cert holds no PEM certificate; injected proxies verify the policy stream with the system CAs');
    return values;
  }
  return { ...values, policy: { ...values.policy, controllerCa: pem } };
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
  values = withControllerCa(values, flags.tlsCert, log);
  const namespace = flags.namespace ?? process.env.WEFT_NAMESPACE ?? process.env.POD_NAMESPACE;
  const tls = await readKeyPair(flags.tlsCert, flags.tlsKey);
  const metrics = createInjectorMetrics();
  const config = Object.freeze({ values, version: weftVersion(), controllerNamespace: namespace });

  const kube = kubeClient(flags.kubeconfig, log);
  const events = kube ? createEventQueue(kube, log) : undefined;

  const policyPlugin = await loadPolicyPlugin(log);
  let draining = false;
  const app = await buildControllerApp({
    tls,
    config,
    metrics,
    logger: log,
    plugins: policyPlugin ? [policyPlugin] : [],
    pluginOptions: { namespace, values, registry: metrics.registry, logger: log, kube },
    ...(events ? { recordEvent: (e) => void events.record(e) } : {}),
    isDraining: () => draining,
  });
  let ready = false;
  const admin = buildAdminApp({ registry: metrics.registry, isReady: () => ready, logger: log });
  await app.listen({ port: flags.port, host: flags.address });
  await admin.listen({ port: flags.adminPort, host: flags.address });
  const watcher = watchKeyPair(tls, { certFile: flags.tlsCert, keyFile: flags.tlsKey, log, pollMs: 30_000, apply: (p) => app.server.setSecureContext(p) });
  ready = true;
  log.info({ port: flags.port, adminPort: flags.adminPort, namespace, policy: policyPlugin !== undefined, cluster: kube?.server.origin ?? null }, 'weft controller serving');

  return new Promise<number>((resolve) => {
    const stop = async (signal: string) => {
      if (!ready) return;
      ready = false;
      // With failurePolicy Fail, a review sent to this replica after it stopped listening
      // fails the pod's creation. Until the endpoint removal has reached every API server,
      // keep serving (readyz 503, each answer closing its connection so keep-alive clients
      // move to another replica), then stop accepting and finish what is in flight.
      draining = true;
      log.info({ signal, delayMs: flags.shutdownDelayMs }, 'shutting down: still serving during the shutdown delay');
      await new Promise((r) => setTimeout(r, flags.shutdownDelayMs));
      log.info('shutting down: finishing in-flight reviews');
      watcher.close();
      await app.close();
      await admin.close();
      if (events) {
        // Give queued Events a moment, but never hold the exit on the API server.
        await Promise.race([events.flush(), new Promise((r) => setTimeout(r, 2000).unref())]);
        events.close();
      }
      resolve(0);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
}
