// Turns per-round numbers into medians with min–max spread, the target ratios (met / not met)
// and the markdown table. Pure: no I/O.
import type { Sizes } from './workloads/index.js';

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export interface ArmResult {
  name: string;
  description: string;
  hops: number;
  skipped?: string;
  /** One flat record per round: `latency.p50`, `http1000.cpuPer1k.client-side`, … */
  rounds: Record<string, number>[];
  errors: string[];
  rssIdleMiB?: Record<string, number>;
  summary?: Record<string, Spread>;
}

export interface Target {
  arm: string;
  what: string;
  value: number;
  limit: number;
  /** `value ≤ limit` or `value ≥ limit`. */
  op: '<=' | '>=';
  unit: string;
  met: boolean;
}

export interface BenchResult {
  schema: 1;
  startedAt: string;
  finishedAt: string;
  seconds: number;
  quick: boolean;
  rounds: number;
  sizes: Sizes;
  machine: { cpus: number; kernel: string; loadavgAtStart: number[] };
  pinning: string;
  tools: Record<string, string>;
  arms: ArmResult[];
  targets?: Target[];
  extras: Record<string, unknown>;
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function spread(xs: number[]): Spread {
  const s = xs.filter((x) => Number.isFinite(x));
  return { median: median(s), min: s.length ? Math.min(...s) : NaN, max: s.length ? Math.max(...s) : NaN, n: s.length };
}

export function summarize(rounds: Record<string, number>[]): Record<string, Spread> {
  const keys = new Set(rounds.flatMap((r) => Object.keys(r)));
  return Object.fromEntries([...keys].sort().map((k) => [k, spread(rounds.map((r) => r[k] ?? NaN))]));
}

const arm = (b: BenchResult, name: string): ArmResult | undefined => b.arms.find((a) => a.name === name && !a.skipped);

/** Added latency of `a` over `base`, per round (same round = same machine conditions), then the median. */
export function added(a: ArmResult, base: ArmResult, key: string): number {
  // The direct arm has no two-hop path: both hops are measured against its one-hop run.
  const baseKey = key.replace(/^http2hop/, 'http');
  const per = a.rounds.map((r, i) => (r[key] ?? NaN) - (base.rounds[i]?.[baseKey] ?? NaN));
  return median(per);
}

const med = (a: ArmResult, key: string): number => a.summary?.[key]?.median ?? NaN;

/** Worst proxy (client- or server-side) of a run for a metric prefix such as `cpuPer1k`. */
function worstProxy(a: ArmResult, run: string, metric: string): number {
  const values = Object.keys(a.summary ?? {})
    .filter((k) => k.startsWith(`${run}.${metric}.`))
    .map((k) => med(a, k))
    .filter(Number.isFinite);
  return values.length ? Math.max(...values) : NaN;
}

export function targets(b: BenchResult): Target[] {
  const out: Target[] = [];
  const push = (armName: string, what: string, value: number, op: Target['op'], limit: number, unit: string) => {
    if (!Number.isFinite(value) || !Number.isFinite(limit)) return;
    out.push({ arm: armName, what, value, limit, op, unit, met: op === '<=' ? value <= limit : value >= limit });
  };
  const direct = arm(b, 'direct');
  const hap = arm(b, 'haproxy');
  for (const name of ['weft-direct', 'weft-tproxy', 'weft-ebpf', 'weft-ebpf-skmsg']) {
    const w = arm(b, name);
    if (!w) continue;
    if (direct && hap) {
      push(name, '1 KB ping-pong added p50 ≤ HAProxy', added(w, direct, 'latency.p50'), '<=', added(hap, direct, 'latency.p50'), 'µs');
      push(name, '1 KB ping-pong added p99 ≤ HAProxy', added(w, direct, 'latency.p99'), '<=', added(hap, direct, 'latency.p99'), 'µs');
    }
    if (hap) {
      push(name, 'saturated rt/s (4 conns) ≥ HAProxy', med(w, 'rtps.rtps'), '>=', med(hap, 'rtps.rtps'), 'rt/s');
      push(name, 'new connections/s ≥ HAProxy', med(w, 'connrate.cps'), '>=', med(hap, 'connrate.cps'), 'conn/s');
    }
    if (direct) push(name, 'bulk ≥ 0.8 × direct', med(w, 'bulk.gbps'), '>=', 0.8 * med(direct, 'bulk.gbps'), 'Gbit/s');
    const two = w.rounds.some((r) => 'http2hop1000.p99' in r) && name !== 'weft-direct';
    const run = two ? 'http2hop1000' : 'http1000';
    const hops = two ? 'two proxies' : 'one proxy';
    if (direct) push(name, `HTTP 1 KB @1,000 rps added p99 (${hops}) ≤ 0.3 ms`, added(w, direct, `${run}.p99`) / 1000, '<=', 0.3, 'ms');
    push(name, `vCPU per 1,000 rps per proxy (${hops}, worst) ≤ 0.2`, worstProxy(w, run, 'cpuPer1k'), '<=', 0.2, 'vCPU');
    const rss = Math.max(...[worstProxy(w, 'http5000', 'rssPeakMiB'), worstProxy(w, 'http2hop5000', 'rssPeakMiB'), worstProxy(w, run, 'rssPeakMiB')].filter(Number.isFinite));
    push(name, 'proxy RSS under load (worst) ≤ 60 MB', (rss * 1048576) / 1e6, '<=', 60, 'MB');
  }
  // e2e/bench/init.ts: what the init container costs, Node start included.
  const init = b.extras.init as { cliMedianMs?: number; targetMs?: number } | undefined;
  if (typeof init?.cliMedianMs === 'number') push('weft init', 'tproxy: program a pod, CLI wall time (Node start included) ≤ 100 ms', init.cliMedianMs, '<=', init.targetMs ?? 100, 'ms');
  const tp = arm(b, 'weft-tproxy');
  for (const name of ['weft-ebpf', 'weft-ebpf-skmsg']) {
    const eb = arm(b, name);
    if (!tp || !eb) continue;
    push(name, 'eBPF rt/s ≥ tproxy', med(eb, 'rtps.rtps'), '>=', med(tp, 'rtps.rtps'), 'rt/s');
    push(name, 'eBPF conn/s ≥ tproxy', med(eb, 'connrate.cps'), '>=', med(tp, 'connrate.cps'), 'conn/s');
    push(name, 'eBPF bulk ≥ tproxy', med(eb, 'bulk.gbps'), '>=', med(tp, 'bulk.gbps'), 'Gbit/s');
    push(name, 'eBPF ping-pong p50 ≤ tproxy', med(eb, 'latency.p50'), '<=', med(tp, 'latency.p50'), 'µs');
    push(name, 'eBPF ping-pong p99 ≤ tproxy', med(eb, 'latency.p99'), '<=', med(tp, 'latency.p99'), 'µs');
  }
  return out;
}

const fmt = (n: number, d = 1): string => (Number.isFinite(n) ? n.toFixed(d) : '–');

function cell(a: ArmResult, key: string, d = 1, scale = 1): string {
  const s = a.summary?.[key];
  if (!s || !Number.isFinite(s.median)) return '–';
  // A value from fewer rounds than the run had says so: the other rounds failed (see Errors).
  const partial = s.n < a.rounds.length ? ` [${s.n} of ${a.rounds.length} rounds]` : '';
  if (s.n < 2 || s.min === s.max) return `${fmt(s.median * scale, d)}${partial}`;
  return `${fmt(s.median * scale, d)} (${fmt(s.min * scale, d)}–${fmt(s.max * scale, d)})${partial}`;
}

/** `http1000` < `http5000` < `http2hop1000` < `http2hop5000`. */
function runOrder(a: string, b: string): number {
  const k = (r: string) => (r.startsWith('http2hop') ? 1e9 : 0) + Number(/\d+$/.exec(r)?.[0] ?? 0);
  return k(a) - k(b);
}

export function markdown(b: BenchResult): string {
  const ts = b.targets ?? targets(b);
  const ok = b.arms.filter((a) => !a.skipped);
  const direct = arm(b, 'direct');
  const lines: string[] = [];
  lines.push(`# weft benchmark ${b.quick ? '(--quick: structure check, numbers not meaningful)' : ''}`.trim(), '');
  lines.push(`${b.startedAt} · ${b.seconds.toFixed(0)} s · ${b.rounds} round(s), median (min–max) · ${b.machine.cpus} CPUs, kernel ${b.machine.kernel}, load average at start ${b.machine.loadavgAtStart.join(' ')}`, '');
  lines.push(`Pinning: ${b.pinning}.`, '');
  lines.push('## Arms', '', '| arm | what | status |', '| --- | --- | --- |');
  for (const a of b.arms) lines.push(`| ${a.name} | ${a.description} | ${a.skipped ? `skipped: ${a.skipped.replace(/\|/g, '/').replace(/\s+/g, ' ')}` : a.errors.length ? `ran, ${a.errors.length} error(s)` : 'ran'} |`);
  lines.push('', '## TCP (1 KB ping-pong on one connection, µs; saturated round trips/s over 4 connections; connect+1 KB+close per s; one stream to a sink)', '');
  lines.push('| arm | p50 | p90 | p99 | p99.9 | added p50 / p99 | rt/s | conn/s | bulk Gbit/s | 1 GiB s |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const a of ok) {
    const add = direct && a !== direct ? `${fmt(added(a, direct, 'latency.p50'))} / ${fmt(added(a, direct, 'latency.p99'))}` : '–';
    lines.push(`| ${a.name} | ${cell(a, 'latency.p50')} | ${cell(a, 'latency.p90')} | ${cell(a, 'latency.p99')} | ${cell(a, 'latency.p999')} | ${add} | ${cell(a, 'rtps.rtps', 0)} | ${cell(a, 'connrate.cps', 0)} | ${cell(a, 'bulk.gbps', 2)} | ${cell(a, 'bulk.secondsPerGiB', 2)} |`);
  }
  lines.push('', '## HTTP/1.1 1 KB, open loop at a fixed rate (latency from intended send time, µs), proxy CPU and RSS', '');
  lines.push('| arm | path | rate | p50 | p99 | added p50 / p99 | vCPU per 1,000 rps (per proxy) | RSS peak MiB | RSS idle MiB |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const a of ok) {
    for (const run of Object.keys(a.summary ?? {}).filter((k) => /^http(2hop)?\d+\.p50$/.test(k)).map((k) => k.split('.')[0]!).sort(runOrder)) {
      const rate = Number(/\d+$/.exec(run)?.[0]);
      const path = run.startsWith('http2hop') ? 'two hops' : 'one hop';
      const add = direct && a !== direct ? `${fmt(added(a, direct, `${run}.p50`))} / ${fmt(added(a, direct, `${run}.p99`))}` : '–';
      const roles = Object.keys(a.summary ?? {}).filter((k) => k.startsWith(`${run}.cpuPer1k.`)).map((k) => k.slice(`${run}.cpuPer1k.`.length));
      const cpu = roles.map((r) => `${r}: ${cell(a, `${run}.cpuPer1k.${r}`, 3)}`).join('<br>') || '–';
      const rss = roles.map((r) => `${r}: ${cell(a, `${run}.rssPeakMiB.${r}`, 1)}`).join('<br>') || '–';
      const idle = Object.entries(a.rssIdleMiB ?? {}).map(([r, v]) => `${r}: ${fmt(v)}`).join('<br>') || '–';
      lines.push(`| ${a.name} | ${path} | ${rate} | ${cell(a, `${run}.p50`)} | ${cell(a, `${run}.p99`)} | ${add} | ${cpu} | ${rss} | ${idle} |`);
    }
  }
  lines.push('', '## Targets (ratios within this run)', '', '| arm | target | value | limit | met |', '| --- | --- | --- | --- | --- |');
  for (const t of ts) lines.push(`| ${t.arm} | ${t.what} | ${fmt(t.value, t.unit === 'ms' || t.unit === 'vCPU' ? 3 : 1)} ${t.unit} | ${t.op} ${fmt(t.limit, t.unit === 'ms' || t.unit === 'vCPU' ? 3 : 1)} | ${t.met ? 'met' : 'not met'} |`);
  if (ts.length === 0) lines.push('| – | no weft arm ran | | | |');
  const errs = b.arms.flatMap((a) => a.errors.map((e) => `- ${a.name}: ${e}`));
  if (errs.length) lines.push('', '## Errors', '', ...errs);
  lines.push('', '## Extra sections', '', ...extrasLines(b.extras));
  lines.push('', '## Tools', '', ...Object.entries(b.tools).map(([k, v]) => `- ${k}: ${v}`), '');
  return `${lines.join('\n')}\n`;
}

/** Other engineers' micro-benchmarks (relay, inject, init): relay as a table, the rest as JSON. */
function extrasLines(extras: Record<string, unknown>): string[] {
  const out: string[] = [];
  if (typeof extras.skipped === 'string') return [`Not run: ${extras.skipped}.`];
  for (const [name, value] of Object.entries(extras)) {
    const v = value as { skipped?: string; results?: Record<string, unknown>[] };
    if (v?.skipped) out.push(`- ${name}: skipped: ${v.skipped}`);
    else if (name === 'relay' && Array.isArray(v?.results) && v.results.length > 0) {
      const cols = Object.keys(v.results[0]!);
      out.push(`- relay (e2e/bench/relay.ts, loopback, no sandbox):`, '', `| ${cols.join(' | ')} |`, `| ${cols.map(() => '---').join(' | ')} |`);
      for (const r of v.results) out.push(`| ${cols.map((c) => String(r[c] ?? '')).join(' | ')} |`);
      out.push('');
    } else out.push(`- ${name}: \`${JSON.stringify(value)}\``);
  }
  return out;
}
