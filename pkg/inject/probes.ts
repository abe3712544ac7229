// App probe rewrite (as Istio does): kubelet probes go to the proxy's admin port, which is
// never intercepted, at /app-health/<container>/<livez|readyz|startupz>; the proxy runs the
// original probe (httpGet, tcpSocket, or grpc as grpc.health.v1 Health/Check) from inside
// the pod. So probes pass under a deny-by-default policy and whatever the interception mode.
// exec probes (no network), and probes with a `host` (not the pod), stay as they are.
import type { Container, HttpHeader, Probe } from '../api/k8s-types.js';

export type AppProbe = (
  | { httpGet: { port: number; path: string; scheme: string; httpHeaders: HttpHeader[] } }
  | { tcpSocket: { port: number } }
  | { grpc: { port: number; service: string } }
) & { timeoutSeconds?: number };

/** Keys are `<container>/<livez|readyz|startupz>`; the proxy reads this from WEFT_APP_PROBES. */
export type AppProbes = Record<string, AppProbe>;

const KINDS = [
  ['livenessProbe', 'livez'],
  ['readinessProbe', 'readyz'],
  ['startupProbe', 'startupz'],
] as const;

function resolvePort(c: Container, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

/**
 * The path as the kubelet requests it: it parses `path` as a URL reference and sets scheme
 * and host, so `healthz` is fetched as `/healthz` and an empty path as `/`. Kubernetes
 * accepts both; the proxy's schema wants the leading "/".
 */
export function probePath(path: string | undefined): string {
  if (!path) return '/';
  return path.startsWith('/') ? path : `/${path}`;
}

function rewriteOne(c: Container, probe: Probe, adminPort: number, path: string): { probe: Probe; original: AppProbe } | undefined {
  const { httpGet, tcpSocket, grpc, ...timing } = probe;
  let original: AppProbe;
  if (httpGet && !httpGet.host) {
    const port = resolvePort(c, httpGet.port);
    if (port === undefined) return undefined;
    original = { httpGet: { port, path: probePath(httpGet.path), scheme: httpGet.scheme ?? 'HTTP', httpHeaders: httpGet.httpHeaders ?? [] } };
  } else if (tcpSocket && !tcpSocket.host) {
    const port = resolvePort(c, tcpSocket.port);
    if (port === undefined) return undefined;
    original = { tcpSocket: { port } };
  } else if (grpc && typeof grpc.port === 'number') {
    original = { grpc: { port: grpc.port, service: grpc.service ?? '' } };
  } else {
    return undefined;
  }
  // The proxy replays the probe with the app's own timeout (the kubelet default is 1 s).
  if (probe.timeoutSeconds !== undefined) original.timeoutSeconds = probe.timeoutSeconds;
  return { probe: { ...timing, httpGet: { path, port: adminPort, scheme: 'HTTP' } }, original };
}

/**
 * Returns the containers with rewritten probes (copies) and the originals for the proxy;
 * containers that `include` rejects are returned as they are.
 */
export function rewriteProbes(containers: Container[], adminPort: number, include: (c: Container) => boolean = () => true): { containers: Container[]; appProbes: AppProbes } {
  const appProbes: AppProbes = {};
  const out = containers.map((c) => {
    if (!include(c)) return c;
    let copy: Container | undefined;
    for (const [field, suffix] of KINDS) {
      const probe = c[field];
      if (!probe) continue;
      const key = `${c.name}/${suffix}`;
      const r = rewriteOne(c, probe, adminPort, `/app-health/${key}`);
      if (!r) continue;
      copy ??= { ...c };
      copy[field] = r.probe;
      appProbes[key] = r.original;
    }
    return copy ?? c;
  });
  return { containers: out, appProbes };
}
