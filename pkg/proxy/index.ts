// `weft proxy` assembled: config → native capabilities → policy → listeners → admin.
// Ready once listeners are up and policy is loaded; drain on request.
import type { ProxyConfig } from '../api/proxy-config.js';
import { ErrorCodes, WeftError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { createLiteLogger } from '../log/lite.js';
import { createProxyMetrics, type ProxyMetrics } from '../metrics/proxy.js';
import { createRegistry, type Registry } from '../metrics/registry.js';
import type { Authorizer } from '../policy/types.js';
import { buildAdmin } from './admin.js';
import { ProxyEngine, type EngineOptions, type ResolveDst } from './engine.js';
import { loadNativeCaps, noNative, type NativeCaps } from './native-bridge.js';
import { policySource, type PolicySource } from './policy-wiring.js';
import type { AccessLog } from './types.js';

export { ProxyEngine } from './engine.js';
export type { ResolveDst } from './engine.js';

export interface StartOptions {
  log?: Logger;
  registry?: Registry;
  /** Overrides the policy source (tests). */
  authorizer?: Authorizer;
  /** Skip loading the addon (tests of the pure-JS paths). */
  native?: NativeCaps | false;
  resolveDst?: ResolveDst;
  hosts?: EngineOptions['hosts'];
  adminHost?: string;
  accessLog?: AccessLog;
  /** Called once a drain asked for by POST /shutdown has finished. */
  onShutdown?: () => void;
}

export interface RunningProxy {
  engine: ProxyEngine;
  admin: ReturnType<typeof buildAdmin>;
  metrics: ProxyMetrics;
  adminPort: number;
  ready(): boolean;
  /** Stop accepting (/ready → 503), let work finish up to drainGraceMs, close the rest. */
  drain(graceMs?: number): Promise<number>;
  /** Close everything now. */
  close(): Promise<void>;
}

export async function startProxy(config: Readonly<ProxyConfig>, o: StartOptions = {}): Promise<RunningProxy> {
  const log: Logger = o.log ?? createLiteLogger('proxy', config.logLevel);
  const registry = o.registry ?? createRegistry({ defaultLabels: { namespace: config.pod.namespace, pod: config.pod.name } });
  const metrics = createProxyMetrics(registry);
  let state: 'starting' | 'ready' | 'draining' = 'starting';
  let policy: PolicySource | null = null;
  let drainP: Promise<number> | null = null;

  const [caps, pol] = await Promise.all([
    o.native === false ? noNative() : (o.native ?? loadNativeCaps()),
    o.authorizer ? null : policySource({ policyFile: config.policyFile, controller: config.controller, tokenFile: config.tokenFile, controllerCa: config.controllerCa, controllerCaPem: config.controllerCaPem, defaultInboundPolicy: config.defaultInboundPolicy, pod: config.pod, podLabels: config.podLabels, log, registry }),
  ]);
  policy = pol;
  if (config.mode === 'tproxy' && !(caps.listen && caps.native)) {
    await policy?.close();
    throw new WeftError(ErrorCodes.NATIVE, `--mode tproxy needs the native addon for IP_TRANSPARENT listeners (${caps.missing ?? 'unavailable'}); use --mode ebpf or none, or build it with 'npm run build:addon'`, { field: '--mode' });
  }
  if (caps.missing && (config.relay === 'native' || config.proxyMark > 0 || config.mode !== 'none')) log.warn({ code: 'native_partial', detail: caps.missing }, 'native addon incomplete: pure-JS paths used where it lacks a capability');

  const accessLog: AccessLog | null = o.accessLog ?? (config.accessLog ? (rec) => void process.stdout.write(`${JSON.stringify(rec)}\n`) : null);
  const engine = new ProxyEngine({ config, log, metrics, caps, authorizer: o.authorizer ?? policy!.authorizer, accessLog, ...(o.resolveDst ? { resolveDst: o.resolveDst } : {}), ...(o.hosts ? { hosts: o.hosts } : {}) });

  const drain = (graceMs = config.drainGraceMs): Promise<number> => {
    if (drainP) return drainP;
    state = 'draining';
    log.info({ graceMs, active: engine.activeConnections }, 'draining');
    drainP = engine.drain(graceMs).then(async (aborted) => {
      await policy?.close();
      await admin.close();
      log.info({ aborted }, 'drained');
      return aborted;
    });
    return drainP;
  };
  const admin = buildAdmin({
    config,
    log,
    registry,
    ready: () => state === 'ready',
    describe: () => ({
      state,
      policy: o.authorizer ? 'injected' : policy?.description,
      native: { loaded: caps.native !== null, missing: caps.missing ?? null, relay: config.relay === 'native' && caps.relay ? 'native' : 'js' },
      listeners: engine.listeners.map((l) => ({ direction: l.direction, family: l.family, port: l.port })),
      activeConnections: engine.activeConnections,
    }),
    shutdown: () => void drain().then(() => o.onShutdown?.()),
  });
  // Admin first: kubelet sees 503 (not a refused connection) while listeners come up.
  await admin.listen({ host: o.adminHost ?? '0.0.0.0', port: config.adminPort });
  try {
    await engine.start();
  } catch (e) {
    await admin.close();
    await policy?.close();
    throw e;
  }
  state = 'ready';
  const address = admin.server.address();
  const adminPort = typeof address === 'object' && address ? address.port : config.adminPort;
  log.info({ mode: config.mode, relay: config.relay === 'native' && caps.relay ? 'native' : 'js', listeners: engine.listeners.length, adminPort, startupMs: Math.round(performance.now()) }, 'proxy ready');
  return {
    engine,
    admin,
    metrics,
    adminPort,
    ready: () => state === 'ready',
    drain,
    async close() {
      state = 'draining';
      await engine.close();
      await admin.close();
      await policy?.close();
    },
  };
}
