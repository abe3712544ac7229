// Policy metrics: the proxy-side sources (file, controller stream) and the controller side
// (watch streams served, admission validations, Kubernetes watch restarts). Created once
// per registry (memoized) so several sources in one process share the series.
import { Counter, Gauge, type Registry } from './prom.js';
import { createRegistry } from './registry.js';

export type PolicySourceKind = 'file' | 'controller';

export interface PolicySourceMetrics {
  /** A policy update was applied (ok) or rejected and the last good one kept (error). */
  update(source: PolicySourceKind, ok: boolean, policies?: number): void;
  /** The controller stream connected or dropped. */
  connected(source: PolicySourceKind, up: boolean): void;
  /** The source confirmed its policy is current (a snapshot or keepalive arrived). */
  fresh(source: PolicySourceKind): void;
  /** The source starts: its series exist from the first scrape (not connected, stale since
   * now), so a proxy that never reaches its source is visible, not absent. */
  started(source: PolicySourceKind): void;
}

export interface PolicyControllerMetrics {
  streams: { inc(): void; dec(): void };
  validation(allowed: boolean): void;
  watchRestart(resource: string, reason: 'gone' | 'closed' | 'error'): void;
}

const sourceCache = new WeakMap<Registry, PolicySourceMetrics>();
const controllerCache = new WeakMap<Registry, PolicyControllerMetrics>();
let fallback: Registry | undefined;

/** A registry for callers that were given none (metrics then go unexported, but work). */
export function fallbackRegistry(): Registry {
  fallback ??= createRegistry();
  return fallback;
}

export function policySourceMetrics(registry: Registry = fallbackRegistry()): PolicySourceMetrics {
  const hit = sourceCache.get(registry);
  if (hit) return hit;
  const labelNames = ['source'] as const;
  const updates = new Counter({ name: 'weft_policy_updates_total', help: 'Policy updates received, by result (error: rejected, the last good policy is kept)', labelNames: ['source', 'result'], registers: [registry] });
  const count = new Gauge({ name: 'weft_policy_active_policies', help: 'AuthorizationPolicies in effect for this pod', labelNames, registers: [registry] });
  const up = new Gauge({ name: 'weft_policy_stream_connected', help: '1 while the policy source is connected (controller stream) or readable (file)', labelNames, registers: [registry] });
  const last = new Map<PolicySourceKind, number>();
  new Gauge({
    name: 'weft_policy_staleness_seconds',
    help: 'Seconds since the policy source last confirmed the policy is current',
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [source, at] of last) this.set({ source }, (Date.now() - at) / 1000);
    },
  });
  const m: PolicySourceMetrics = {
    update(source, ok, policies) {
      updates.inc({ source, result: ok ? 'ok' : 'error' });
      if (ok) {
        last.set(source, Date.now());
        if (policies !== undefined) count.set({ source }, policies);
      }
    },
    connected: (source, on) => up.set({ source }, on ? 1 : 0),
    fresh: (source) => void last.set(source, Date.now()),
    started(source) {
      if (!last.has(source)) last.set(source, Date.now());
      up.set({ source }, 0);
    },
  };
  sourceCache.set(registry, m);
  return m;
}

export function policyControllerMetrics(registry: Registry = fallbackRegistry()): PolicyControllerMetrics {
  const hit = controllerCache.get(registry);
  if (hit) return hit;
  const streams = new Gauge({ name: 'weft_policy_watch_streams', help: 'Proxies connected to GET /v1/policy/watch', registers: [registry] });
  const validations = new Counter({ name: 'weft_policy_validations_total', help: 'AuthorizationPolicy admission validations, by result', labelNames: ['result'], registers: [registry] });
  const restarts = new Counter({ name: 'weft_k8s_watch_restarts_total', help: 'Kubernetes watches restarted, by resource and reason (gone: 410, relisted)', labelNames: ['resource', 'reason'], registers: [registry] });
  const m: PolicyControllerMetrics = {
    streams: { inc: () => streams.inc(), dec: () => streams.dec() },
    validation: (allowed) => validations.inc({ result: allowed ? 'allowed' : 'rejected' }),
    watchRestart: (resource, reason) => restarts.inc({ resource, reason }),
  };
  controllerCache.set(registry, m);
  return m;
}
