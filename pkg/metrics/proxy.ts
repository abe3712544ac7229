// The proxy's metrics. Every label set is bounded: direction (2) × peer class (4), a fixed
// failure-reason list, HTTP methods folded to a fixed set, status codes 0 and 100-599, and the
// policy label (namespace/name; policies are few). Label children are bound once per
// (direction, peer) so the per-connection and per-request hot path does no label lookups.
import { Counter, Histogram, type Registry } from 'prom-client';

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

export function createProxyMetrics(registry: Registry): ProxyMetrics {
  const labelNames = ['direction', 'peer'] as const;
  const opened = new Counter({ name: 'weft_tcp_connections_opened_total', help: 'TCP connections accepted by the proxy', labelNames, registers: [registry] });
  const closed = new Counter({ name: 'weft_tcp_connections_closed_total', help: 'TCP connections closed by the proxy', labelNames, registers: [registry] });
  const sent = new Counter({ name: 'weft_tcp_sent_bytes_total', help: 'Bytes sent to the downstream peer (responses)', labelNames, registers: [registry] });
  const received = new Counter({ name: 'weft_tcp_received_bytes_total', help: 'Bytes received from the downstream peer (requests)', labelNames, registers: [registry] });
  const failures = new Counter({ name: 'weft_tcp_connection_failures_total', help: 'Connections refused or failed, by reason', labelNames: ['direction', 'peer', 'reason'], registers: [registry] });
  const requests = new Counter({ name: 'weft_requests_total', help: 'HTTP/1 requests proxied, by response code and method', labelNames: ['direction', 'peer', 'response_code', 'method'], registers: [registry] });
  const duration = new Histogram({
    name: 'weft_request_duration_seconds',
    help: 'HTTP/1 request duration, request head to end of response',
    labelNames,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const authz = new Counter({ name: 'weft_authz_decisions_total', help: 'Authorization decisions (connections and HTTP requests)', labelNames: ['direction', 'decision', 'policy'], registers: [registry] });

  const bundles = new Map<string, ConnMetrics>();
  for (const direction of DIRECTIONS) {
    for (const peer of PEER_CLASSES) {
      const l = { direction, peer };
      const failureChildren = new Map(FAILURE_REASONS.map((reason) => [reason, failures.labels({ ...l, reason })]));
      const requestChildren = new Map<string, { inc(): void }>();
      bundles.set(`${direction}/${peer}`, {
        opened: opened.labels(l),
        closed: closed.labels(l),
        sent: sent.labels(l),
        received: received.labels(l),
        duration: duration.labels(l),
        failure: (reason) => failureChildren.get(reason)?.inc(),
        request: (method, code) => {
          const m = methodLabel(method);
          const status = statusLabel(code);
          const key = `${m} ${status}`;
          let c = requestChildren.get(key);
          if (!c) {
            c = requests.labels({ ...l, method: m, response_code: status });
            requestChildren.set(key, c);
          }
          c.inc();
        },
      });
    }
  }
  return {
    registry,
    bound: (direction, peer) => bundles.get(`${direction}/${peer}`)!,
    authz: (direction, allow, policy) => authz.inc({ direction, decision: allow ? 'allow' : 'deny', policy: policy ?? '' }),
  };
}
