// Runs the app's original kubelet probe from inside the pod, so probes keep working when
// policy denies traffic by default: the injector points kubelet at
// GET :15020/app-health/<container>/<kind> and the proxy replays the real probe here.
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import type { AppProbe } from '../api/proxy-config.js';

export interface ProbeResult {
  /** The status to hand kubelet: the app's own for httpGet, 200/503 for tcpSocket. */
  status: number;
  detail: string;
  /** The app could not be reached at all (worth trying the next address). */
  unreachable?: boolean;
}

/** Try 127.0.0.1 first, then the pod IPs: an app may bind only its pod address. */
export async function runProbeOn(probe: AppProbe, hosts: readonly string[]): Promise<ProbeResult> {
  let last: ProbeResult = { status: 503, detail: 'no address to probe', unreachable: true };
  for (const host of hosts) {
    last = await runProbe(probe, host);
    if (!last.unreachable) return last;
  }
  return last;
}

const DEFAULT_TIMEOUT_MS = 1000;

// node:https (and OpenSSL with it) is loaded only for an HTTPS probe: it costs an idle
// proxy several MiB, and most probes are plain HTTP or TCP.
let httpsRequest: typeof httpRequest | null = null;

export async function runProbe(probe: AppProbe, host: string): Promise<ProbeResult> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000 || DEFAULT_TIMEOUT_MS;
  if ('tcpSocket' in probe) {
    return new Promise((resolve) => {
      const s = connect({ host: probe.tcpSocket.host ?? host, port: probe.tcpSocket.port });
      const finish = (r: ProbeResult) => {
        clearTimeout(timer);
        s.destroy();
        resolve(r);
      };
      const timer = setTimeout(() => finish({ status: 503, detail: 'tcp connect timed out' }), timeoutMs);
      s.once('connect', () => finish({ status: 200, detail: 'tcp connect ok' }));
      s.once('error', (e: NodeJS.ErrnoException) => finish({ status: 503, detail: `tcp connect: ${e.code ?? e.message}`, unreachable: e.code === 'ECONNREFUSED' }));
    });
  }
  const g = probe.httpGet;
  const headers: Record<string, string> = { 'user-agent': 'kube-probe/weft' };
  for (const h of g.httpHeaders) headers[h.name.toLowerCase()] = h.value;
  const req = g.scheme === 'HTTPS' ? (httpsRequest ??= (await import('node:https')).request) : httpRequest;
  return new Promise((resolve) => {
    const r = req(
      { host: g.host ?? host, port: g.port, path: g.path, method: 'GET', headers, timeout: timeoutMs, agent: false, ...(g.scheme === 'HTTPS' ? { rejectUnauthorized: false } : {}) },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 502, detail: `http ${res.statusCode}` }));
        res.on('error', () => resolve({ status: 503, detail: 'http response error' }));
      },
    );
    r.on('timeout', () => r.destroy(Object.assign(new Error('probe timed out'), { code: 'ETIMEDOUT' })));
    r.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 503, detail: `http: ${e.code ?? e.message}`, unreachable: e.code === 'ECONNREFUSED' }));
    r.end();
  });
}
