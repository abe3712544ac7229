// Node.js process metrics (weft_process_*, weft_nodejs_*) for the controller. A module of its
// own so that only what asks for them loads prom-client's collectors (perf_hooks, v8…).
import collectDefaultMetricsImpl from 'prom-client/lib/defaultMetrics.js';
import type * as Prom from 'prom-client';
import { METRIC_PREFIX, type Registry } from './registry.js';

const collectDefaultMetrics = collectDefaultMetricsImpl as typeof Prom.collectDefaultMetrics;

/** Adds the process metrics to `registry`; returns it. */
export function withProcessMetrics(registry: Registry): Registry {
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  return registry;
}
