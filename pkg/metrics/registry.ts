// The one registry factory every component's metrics file uses, so each process exposes a
// single registry with the same default labels and naming. Metrics are never registered on
// prom-client's global registry: tests can build as many independent registries as they like.
import { Registry } from './prom.js';

export type { Registry } from './prom.js';

export interface RegistryOptions {
  /** Labels added to every series (e.g. `{ pod: 'web-0', namespace: 'shop' }`). Empty values are dropped. */
  defaultLabels?: Record<string, string | undefined>;
}

export const METRIC_PREFIX = 'weft_';

export function createRegistry(opts: RegistryOptions = {}): Registry {
  const registry = new Registry();
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.defaultLabels ?? {})) if (v) labels[k] = v;
  if (Object.keys(labels).length > 0) registry.setDefaultLabels(labels);
  return registry;
}

/** Prometheus text exposition of `registry`, with its content type (for an HTTP handler). */
export async function exposition(registry: Registry): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}
