// Probes as a kubelet runs them: httpGet and tcpSocket from the node's network namespace to
// the pod IP (so they cross the veth like real kubelet probes), exec inside the container.
import { ErrorCodes, WeftError } from '../../pkg/errors/index.js';
import type { ExecResult } from './index.js';
import type { Container, Probe } from './types.js';

export interface ProbeTarget {
  podIP: string;
  container: Container;
  where: string;
  /** Runs argv in the node netns. */
  nodeExec(argv: string[], timeoutMs: number): Promise<ExecResult>;
  /** Runs argv in the container. */
  containerExec(argv: string[], timeoutMs: number): Promise<ExecResult>;
}

function resolvePort(port: number | string, c: Container, where: string): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const p = c.ports?.find((x) => x.name === port);
  if (!p) throw new WeftError(ErrorCodes.SANDBOX, `${where}: port "${port}" names no containerPort of ${c.name}`, { field: where });
  return p.containerPort;
}

const hostPart = (h: string): string => (h.includes(':') ? `[${h}]` : h);

/** The probe's timings for tests: periodSeconds honoured between 100 ms and 1 s. */
export function probeTimings(p: Probe): { periodMs: number; initialDelayMs: number; timeoutMs: number } {
  const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
  return {
    periodMs: clamp((p.periodSeconds ?? 10) * 1000, 100, 1000),
    initialDelayMs: clamp((p.initialDelaySeconds ?? 0) * 1000, 0, 2000),
    timeoutMs: clamp((p.timeoutSeconds ?? 1) * 1000, 200, 5000),
  };
}

/** Runs the probe once; true on success. `detail` gets a line about the last failure. */
export async function probeOnce(p: Probe, t: ProbeTarget, which: string, detail: { last: string }): Promise<boolean> {
  const { timeoutMs } = probeTimings(p);
  const at = `${t.where}.${which}`;
  if (p.httpGet) {
    const port = resolvePort(p.httpGet.port, t.container, `${at}.httpGet.port`);
    const scheme = (p.httpGet.scheme ?? 'HTTP').toLowerCase();
    const path = p.httpGet.path ?? '/';
    const url = `${scheme}://${hostPart(p.httpGet.host ?? t.podIP)}:${port}${path.startsWith('/') ? path : `/${path}`}`;
    const headers = (p.httpGet.httpHeaders ?? []).flatMap((h) => ['-H', `${h.name}: ${h.value}`]);
    const r = await t.nodeExec(
      ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-k', '--max-time', String(timeoutMs / 1000), '-A', 'kube-probe/1.31', ...headers, url],
      timeoutMs + 1000,
    );
    const status = Number(r.stdout.trim());
    detail.last = `GET ${url}: ${r.code === 0 ? `HTTP ${status}` : `curl exit ${r.code} ${r.stderr.trim()}`}`;
    return r.code === 0 && status >= 200 && status < 400;
  }
  if (p.tcpSocket) {
    const port = resolvePort(p.tcpSocket.port, t.container, `${at}.tcpSocket.port`);
    const host = p.tcpSocket.host ?? t.podIP;
    const r = await t.nodeExec(['bash', '-c', 'exec 3<>"/dev/tcp/$0/$1"', host, String(port)], timeoutMs);
    detail.last = `TCP ${hostPart(host)}:${port}: ${r.code === 0 ? 'open' : r.timedOut ? 'timeout' : r.stderr.trim()}`;
    return r.code === 0;
  }
  if (p.exec) {
    const cmd = p.exec.command ?? [];
    if (cmd.length === 0) throw new WeftError(ErrorCodes.SANDBOX, `${at}.exec.command: must not be empty`, { field: `${at}.exec.command` });
    const r = await t.containerExec(cmd, timeoutMs);
    detail.last = `exec ${cmd.join(' ')}: ${r.timedOut ? 'timeout' : `exit ${r.code}`} ${(r.stderr || r.stdout).trim().slice(0, 500)}`;
    return r.code === 0;
  }
  throw new WeftError(ErrorCodes.SANDBOX, `${at}: only httpGet, tcpSocket and exec probes are emulated`, { field: at });
}
