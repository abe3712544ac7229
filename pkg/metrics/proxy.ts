// The proxy's metrics. Every label set is bounded: direction (2) × peer class (4), a fixed
// failure-reason list, HTTP methods folded to a fixed set, status codes 0 and 100-599, and the
// policy label (namespace/name; policies are few). Label children are bound once per
// (direction, peer) so the per-connection and per-request hot path does no label lookups.
import { Counter, type Registry } from './prom.js';

export const DIRECTIONS = ['inbound', 'outbound'] as const;
export type Direction = (typeof DIRECTIONS)[number];
/** loopback: 127/8, ::1; local: one of this pod's addresses; cluster: private ranges; external: the rest. */
export const PEER_CLASSES = ['loopback', 'local', 'cluster', 'external'] as const;
export type PeerClass = (typeof PEER_CLASSES)[number];
export const FAILURE_REASONS = ['connect_refused', 'connect_timeout', 'connect_error', 'loop', 'policy_denied', 'no_original_dst'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

export function methodLabel(method: string): string {
  return (HTTP_METHODS as readonly string[]).includes(method) ? method : 'OTHER';
}

/** 100-599 as sent; 0 = the request got no response; anything else (never produced by the
 * HTTP/1 parser, which rejects such status lines) folds to "other". */
export function statusLabel(code: number): string {
  return code === 0 || (code >= 100 && code <= 599) ? String(code) : 'other';
}

/** The counters one connection touches, already bound to its (direction, peer). */
export interface ConnMetrics {
  opened: { inc(n?: number): void };
  closed: { inc(n?: number): void };
  /** Bytes the proxy sent to the downstream (server → client). */
  sent: { inc(n?: number): void };
  /** Bytes the proxy received from the downstream (client → server). */
  received: { inc(n?: number): void };
  duration: { observe(v: number): void };
  failure(reason: FailureReason): void;
  request(method: string, code: number): void;
}

export interface ProxyMetrics {
  registry: Registry;
  bound(direction: Direction, peer: PeerClass): ConnMetrics;
  authz(direction: Direction, allow: boolean, policy: string | undefined): void;
}

/** One label set's running total: the hot path only adds to a number. */
interface Cell {
  readonly labels: Record<string, string>;
  value: number;
}

/**
 * A prom-client Counter fed from plain cells. prom-client's inc() hashes and validates the
 * label set on every call (a few µs); a proxy counts several things per connection, so the
 * cells are summed here and written into the Counter only when it is collected (a scrape).
 */
function cellCounter(registry: Registry, name: string, help: string, labelNames: readonly string[]): (labels: Record<string, string>) => Cell {
  const cells: Cell[] = [];
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const c of cells) this.inc(c.labels, c.value);
    },
  });
  return (labels) => {
    const c: Cell = { labels, value: 0 };
    cells.push(c);
    return c;
  };
}

/**
 * A histogram exposed in Prometheus' format from plain bucket arrays: observe() finds the
 * bucket and adds one, where prom-client's Histogram hashes the label set per observation.
 * The registry takes any object with a name and get() (what prom-client's own metrics are).
 */
function cellHistogram(registry: Registry, name: string, help: string, buckets: readonly number[]): (labels: Record<string, string>) => { observe(v: number): void } {
  const cells: { labels: Record<string, string>; counts: number[]; sum: number; count: number }[] = [];
  registry.registerMetric({
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => ({
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      values: cells.flatMap((c) => {
        let cum = 0;
        return [
          ...buckets.map((le, i) => ((cum += c.counts[i]!), { labels: { ...c.labels, le }, value: cum, metricName: `${name}_bucket` })),
          { labels: { ...c.labels, le: '+Inf' }, value: c.count, metricName: `${name}_bucket` },
          { labels: c.labels, value: c.sum, metricName: `${name}_sum` },
          { labels: c.labels, value: c.count, metricName: `${name}_count` },
        ];
      }),
    }),
  } as unknown as Parameters<Registry['registerMetric']>[0]);
  return (labels) => {
    const c = { labels, counts: buckets.map(() => 0), sum: 0, count: 0 };
    cells.push(c);
    return {
      observe(v: number): void {
        c.sum += v;
        c.count++;
        for (let i = 0; i < buckets.length; i++) {
          if (v <= buckets[i]!) {
            c.counts[i]!++;
            return;
          }
        }
      },
    };
  };
}

const adder = (c: Cell) => ({
  inc(n = 1): void {
    c.value += n;
  },
});

export function createProxyMetrics(registry: Registry): ProxyMetrics {
  const labelNames = ['direction', 'peer'] as const;
  const opened = cellCounter(registry, 'weft_tcp_connections_opened_total', 'TCP connections accepted by the proxy', labelNames);
  const closed = cellCounter(registry, 'weft_tcp_connections_closed_total', 'TCP connections closed by the proxy', labelNames);
  const sent = cellCounter(registry, 'weft_tcp_sent_bytes_total', 'Bytes sent to the downstream peer (responses)', labelNames);
  const received = cellCounter(registry, 'weft_tcp_received_bytes_total', 'Bytes received from the downstream peer (requests)', labelNames);
  const failures = cellCounter(registry, 'weft_tcp_connection_failures_total', 'Connections refused or failed, by reason', ['direction', 'peer', 'reason']);
  const requests = cellCounter(registry, 'weft_requests_total', 'HTTP/1 requests proxied, by response code and method', ['direction', 'peer', 'response_code', 'method']);
  const duration = cellHistogram(registry, 'weft_request_duration_seconds', 'HTTP/1 request duration, request head to end of response', [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
  const authzCell = cellCounter(registry, 'weft_authz_decisions_total', 'Authorization decisions (connections and HTTP requests)', ['direction', 'decision', 'policy']);

  const bundles = { inbound: new Map<PeerClass, ConnMetrics>(), outbound: new Map<PeerClass, ConnMetrics>() };
  for (const direction of DIRECTIONS) {
    for (const peer of PEER_CLASSES) {
      const l = { direction, peer };
      const failureCells = new Map(FAILURE_REASONS.map((reason) => [reason, failures({ ...l, reason })]));
      const requestCells = new Map<string, Cell>();
      bundles[direction].set(peer, {
        opened: adder(opened(l)),
        closed: adder(closed(l)),
        sent: adder(sent(l)),
        received: adder(received(l)),
        duration: duration(l),
        failure: (reason) => {
          const c = failureCells.get(reason);
          if (c) c.value++;
        },
        request: (method, code) => {
          const m = methodLabel(method);
          const status = statusLabel(code);
          const key = `${m} ${status}`;
          let c = requestCells.get(key);
          if (!c) {
            c = requests({ ...l, method: m, response_code: status });
            requestCells.set(key, c);
          }
          c.value++;
        },
      });
    }
  }
  // Decisions by (direction, decision), then policy: the policy string comes from the policy
  // object itself, so the Map lookup needs no string building.
  const authz = { inbound: { allow: new Map<string, Cell>(), deny: new Map<string, Cell>() }, outbound: { allow: new Map<string, Cell>(), deny: new Map<string, Cell>() } };
  return {
    registry,
    bound: (direction, peer) => bundles[direction].get(peer)!,
    authz: (direction, allow, policy) => {
      const byPolicy = authz[direction][allow ? 'allow' : 'deny'];
      const p = policy ?? '';
      let c = byPolicy.get(p);
      if (!c) {
        c = authzCell({ direction, decision: allow ? 'allow' : 'deny', policy: p });
        byPolicy.set(p, c);
      }
      c.value++;
    },
  };
}
