// The workloads: each is one bounded run of the C client (`pingpong.c`) inside the arm's client
// pod, pinned to CLIENT_CPU, printing one JSON line. Proxy CPU and RSS are sampled from /proc
// around the HTTP runs.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { SandboxPod } from '../../sandbox/index.js';
import { CLIENT_CPU, type Endpoint, type ProxyProcess } from '../arms/types.js';

export interface Sizes {
  latencySamples: number;
  latencyWarmup: number;
  rtpsMs: number;
  connrateMs: number;
  warmMs: number;
  connrateMax: number;
  bulkBytes: number;
  httpMs: number;
  httpRates: number[];
  httpConns: number;
  /** A response missing this long ends the HTTP run (counted as not completed). */
  httpTimeoutMs: number;
}

export const FULL: Sizes = {
  latencySamples: 10_000,
  latencyWarmup: 1_000,
  rtpsMs: 2_000,
  connrateMs: 1_500,
  warmMs: 300,
  connrateMax: 40_000,
  bulkBytes: 1 << 30,
  httpMs: 3_000,
  httpRates: [1_000, 5_000],
  httpConns: 8,
  httpTimeoutMs: 5_000,
};

export const QUICK: Sizes = {
  latencySamples: 1_000,
  latencyWarmup: 100,
  rtpsMs: 300,
  connrateMs: 300,
  warmMs: 50,
  connrateMax: 5_000,
  bulkBytes: 32 << 20,
  httpMs: 500,
  httpRates: [1_000, 5_000],
  httpConns: 4,
  httpTimeoutMs: 1_500,
};

export type Json = Record<string, number>;

export async function runClient(pingpong: string, pod: SandboxPod, args: (string | number)[], timeoutMs: number): Promise<Json> {
  const r = await pod.exec(['taskset', '-c', String(CLIENT_CPU), pingpong, ...args.map(String)], { timeoutMs });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let parsed: Json | undefined;
  try {
    parsed = JSON.parse(line) as Json;
  } catch {
    parsed = undefined;
  }
  if (!parsed || (r.code !== 0 && r.code !== 1)) {
    throw new Error(`pingpong ${args[0]} in ${pod.name} failed (code ${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim().slice(0, 500)} ${r.stdout.slice(0, 200)}`);
  }
  if (r.code === 1) parsed.incomplete = 1;
  return parsed;
}

const at = (e: Endpoint): [string, number] => [e.host, e.port];

export const latency = (pp: string, pod: SandboxPod, e: Endpoint, s: Sizes) =>
  runClient(pp, pod, ['latency', ...at(e), s.latencySamples, s.latencyWarmup], 120_000);
export const rtps = (pp: string, pod: SandboxPod, e: Endpoint, s: Sizes) =>
  runClient(pp, pod, ['rtps', ...at(e), 4, s.rtpsMs, s.warmMs], s.rtpsMs + 30_000);
export const connrate = (pp: string, pod: SandboxPod, e: Endpoint, s: Sizes) =>
  runClient(pp, pod, ['connrate', ...at(e), s.connrateMs, s.warmMs, s.connrateMax], s.connrateMs + 30_000);
export const bulk = (pp: string, pod: SandboxPod, e: Endpoint, s: Sizes) =>
  runClient(pp, pod, ['bulk', ...at(e), s.bulkBytes], 120_000);
export const http = (pp: string, pod: SandboxPod, e: Endpoint, s: Sizes, rate: number) =>
  runClient(pp, pod, ['http', ...at(e), rate, s.httpMs, s.httpConns, s.httpTimeoutMs], s.httpMs + s.httpTimeoutMs + 30_000);

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime of the whole process (all threads), in seconds. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export interface ProxyUsage {
  role: ProxyProcess['role'];
  pid: number;
  /** CPU seconds used during the run. */
  cpuSec: number;
  /** Average vCPU over the run's wall time. */
  vcpu: number;
  rssPeakMiB: number;
}

/** Runs `fn` while sampling each proxy's CPU time and peak RSS. */
export async function withUsage<T>(proxies: ProxyProcess[], fn: () => Promise<T>): Promise<{ result: T; usage: ProxyUsage[] }> {
  const before = proxies.map((p) => cpuSeconds(p.pid));
  const peak = proxies.map((p) => rssMiB(p.pid));
  const timer = setInterval(() => proxies.forEach((p, i) => (peak[i] = Math.max(peak[i] ?? 0, rssMiB(p.pid)))), 200);
  const t0 = process.hrtime.bigint();
  try {
    const result = await fn();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const usage = proxies.map((p, i) => {
      const cpuSec = cpuSeconds(p.pid) - (before[i] ?? NaN);
      return { role: p.role, pid: p.pid, cpuSec, vcpu: cpuSec / wall, rssPeakMiB: Math.max(peak[i] ?? 0, rssMiB(p.pid)) };
    });
    return { result, usage };
  } finally {
    clearInterval(timer);
  }
}
