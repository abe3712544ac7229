// `npm run bench`: weft against a direct connection, HAProxy and nginx stream on one sandbox node
// (a client pod and a server pod, see arms/). Arms alternate within every workload (A B C … per
// workload, per round); warm-up is discarded; medians and min–max over rounds are reported.
// Writes e2e/bench/results/<timestamp>.json, latest.json, latest.md and latest.png.
//   node dist/e2e/bench/run.js [--quick] [--rounds N] [--arms a,b] [--out DIR] [--no-extras]
//   node dist/e2e/bench/run.js --render results/X.json   (markdown, chart, targets again)
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createNode, sweepStale, type SandboxNode } from '../sandbox/index.js';
import { directArm, haproxyArm, haproxyVersion, nginxStreamArm, nginxStreamModule } from './arms/plain.js';
import { buildTopology, type Topology } from './arms/topology.js';
import { CLIENT_CPU, PROXY_CPU, SERVER_CPU, type ArmSpec, type ReadyArm } from './arms/types.js';
import { weftDirectArm, weftMeshArm } from './arms/weft.js';
import { renderChart } from './report-png.js';
import { markdown, summarize, targets, type ArmResult, type BenchResult } from './report.js';
import * as W from './workloads/index.js';

const PREFIX = 'wfbn';
const here = dirname(fileURLToPath(import.meta.url));
/** dist/e2e/bench → the source tree's e2e/bench (pingpong.c and results/ live there). */
const srcDir = resolve(here, '../../../e2e/bench');

export interface RunOptions {
  quick: boolean;
  rounds: number;
  arms?: string[];
  outDir: string;
  extras: boolean;
  /** Re-render markdown, chart and targets from a results JSON instead of running. */
  render?: string;
  log?: (line: string) => void;
}

export function parseArgs(argv: string[]): RunOptions {
  const opts: RunOptions = { quick: false, rounds: 3, outDir: join(srcDir, 'results'), extras: true };
  let roundsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') opts.quick = true;
    else if (a === '--rounds') {
      opts.rounds = Number(next());
      roundsGiven = true;
      if (!Number.isInteger(opts.rounds) || opts.rounds < 1 || opts.rounds > 10) throw new Error('--rounds: an integer 1..10');
    } else if (a === '--arms') opts.arms = next().split(',').filter(Boolean);
    else if (a === '--out') opts.outDir = resolve(next());
    else if (a === '--no-extras') opts.extras = false;
    else if (a === '--render') opts.render = resolve(next());
    else throw new Error(`unknown argument ${a} (allowed: --quick, --rounds N, --arms a,b, --out DIR, --no-extras, --render FILE)`);
  }
  if (opts.quick && !roundsGiven) opts.rounds = 1;
  if (opts.quick) opts.extras = false;
  return opts;
}

function compilePingpong(dir: string): string {
  const out = join(dir, 'pingpong');
  const r = spawnSync('cc', ['-O2', '-Wall', '-pthread', '-o', out, join(srcDir, 'pingpong.c')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cc pingpong.c failed: ${r.stderr}`);
  return out;
}

function allArms(topo: Topology): ArmSpec[] {
  return [directArm(topo), haproxyArm(topo, false), haproxyArm(topo, true), nginxStreamArm(topo), weftDirectArm(topo), weftMeshArm(topo, 'tproxy'), weftMeshArm(topo, 'ebpf'), weftMeshArm(topo, 'ebpf', { skMsg: true })];
}

interface Live {
  spec: ArmSpec;
  ready: ReadyArm;
  result: ArmResult;
}

type Step = { key: string; run: (l: Live) => Promise<Record<string, number>> | undefined };

function steps(pp: string, s: W.Sizes): Step[] {
  const http = (hop: 'http' | 'http2hop', rate: number): Step => ({
    key: `${hop}${rate}`,
    run: (l) => {
      const target = l.ready.targets[hop];
      if (!target) return undefined;
      const proxies = hop === 'http' ? l.ready.proxies.filter((p) => p.role === 'client-side') : l.ready.proxies;
      return W.withUsage(proxies, () => W.http(pp, l.ready.client, target, s, rate)).then(({ result, usage }) => {
        const none = !result.samples;
        const out: Record<string, number> = {
          p50: none ? NaN : (result.p50 ?? NaN),
          p99: none ? NaN : (result.p99 ?? NaN),
          p999: none ? NaN : (result.p999 ?? NaN),
          completed: result.completed ?? 0,
          requests: result.requests ?? 0,
        };
        if (out.completed !== out.requests) l.result.errors.push(`round ${l.result.rounds.length} ${hop}${rate}: ${out.completed} of ${out.requests} responses arrived (the rest timed out after ${s.httpTimeoutMs} ms)`);
        for (const u of usage) {
          out[`cpuPer1k.${u.role}`] = u.cpuSec / ((result.completed ?? 0) / 1000);
          out[`rssPeakMiB.${u.role}`] = u.rssPeakMiB;
        }
        return out;
      });
    },
  });
  return [
    { key: 'latency', run: (l) => W.latency(pp, l.ready.client, l.ready.targets.echo, s) },
    { key: 'rtps', run: (l) => W.rtps(pp, l.ready.client, l.ready.targets.echo, s) },
    { key: 'connrate', run: (l) => W.connrate(pp, l.ready.client, l.ready.targets.echo, s) },
    {
      key: 'bulk',
      run: (l) => W.bulk(pp, l.ready.client, l.ready.targets.sink, s).then((r) => ({ ...r, secondsPerGiB: ((r.seconds ?? NaN) * (1 << 30)) / (r.bytes ?? NaN) })),
    },
    ...s.httpRates.map((r) => http('http', r)),
    ...s.httpRates.map((r) => http('http2hop', r)),
  ];
}

async function extras(log: (l: string) => void): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const sections: [string, string, string][] = [
    ['relay', './relay.js', 'benchRelay'],
    ['inject', './inject.js', 'benchInject'],
    ['init', './init.js', 'benchInit'],
    ['tproxyConnRate', './tproxy-connrate.js', 'benchTproxyConnRate'],
  ];
  for (const [name, file, fn] of sections) {
    try {
      const mod = (await import(file)) as Record<string, unknown>;
      const f = mod[fn];
      if (typeof f !== 'function') {
        out[name] = { skipped: `${file} exports no ${fn}` };
        continue;
      }
      log(`extra section: ${fn}`);
      out[name] = await (f as (o?: object) => Promise<unknown>)();
    } catch (e) {
      out[name] = { skipped: `${fn} unavailable: ${(e as Error).message.split('\n')[0]}` };
    }
  }
  return out;
}

export async function runBench(opts: RunOptions): Promise<BenchResult> {
  const began = Date.now();
  const log = opts.log ?? ((l: string) => process.stderr.write(`[bench ${((Date.now() - began) / 1000).toFixed(0).padStart(3)} s] ${l}\n`));
  if (process.getuid?.() !== 0) throw new Error('the bench needs root (network namespaces, cgroups)');
  const sizes = opts.quick ? W.QUICK : W.FULL;
  const startedAt = new Date();
  const live: Live[] = [];
  const results: ArmResult[] = [];
  let node: SandboxNode | undefined;
  let topo: Topology | undefined;
  try {
    sweepStale(PREFIX);
    node = await createNode({ prefix: PREFIX, name: 'n1' });
    // Built into the node's temp dir (removed at teardown): nothing lands in the source tree.
    const pp = compilePingpong(node.dir);
    topo = await buildTopology(node, pp);
    for (const spec of allArms(topo)) {
      if (opts.arms && !opts.arms.includes(spec.name)) continue;
      const result: ArmResult = { name: spec.name, description: spec.description, hops: spec.hops, rounds: [], errors: [] };
      results.push(result);
      log(`setting up ${spec.name}`);
      try {
        const ready = await spec.setup();
        if ('skipped' in ready) {
          result.skipped = ready.skipped;
          log(`  skipped: ${ready.skipped}`);
          continue;
        }
        // A short probe through the arm: an arm that cannot carry one connection is skipped with
        // the reason, not run to produce a table of errors.
        const probe = await W.runClient(topo.pingpong, ready.client, ['latency', ready.targets.echo.host, ready.targets.echo.port, 20, 0], 15_000).catch((e: unknown) => e as Error);
        if (probe instanceof Error) {
          result.skipped = `a probe connection through the arm failed: ${probe.message.slice(0, 400)}`;
          log(`  skipped: ${result.skipped}`);
          await ready.stop().catch(() => {});
          continue;
        }
        live.push({ spec, ready, result });
      } catch (e) {
        result.skipped = `setup failed: ${(e as Error).message.slice(0, 600)}`;
        log(`  ${result.skipped}`);
      }
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const l of live) {
      l.result.rssIdleMiB = Object.fromEntries(l.ready.proxies.map((p) => [p.role, W.rssMiB(p.pid)]));
    }
    for (let round = 0; round < opts.rounds; round++) {
      for (const l of live) l.result.rounds.push({});
      for (const step of steps(pp, sizes)) {
        for (const l of live) {
          const t0 = Date.now();
          try {
            const p = step.run(l);
            if (!p) continue;
            const r = await p;
            if (r.eagain) l.result.errors.push(`round ${round + 1} ${step.key}: read() on a blocking socket returned EAGAIN ${r.eagain} time(s)`);
            const row = l.result.rounds[round]!;
            for (const [k, v] of Object.entries(r)) if (typeof v === 'number') row[`${step.key}.${k}`] = v;
            log(`round ${round + 1} ${step.key.padEnd(12)} ${l.spec.name.padEnd(15)} ${brief(step.key, r)} (${Date.now() - t0} ms)`);
          } catch (e) {
            const msg = `round ${round + 1} ${step.key}: ${(e as Error).message.slice(0, 400)}`;
            l.result.errors.push(msg);
            log(`  ${l.spec.name}: ${msg}`);
          }
        }
      }
    }
  } finally {
    for (const l of live) await l.ready.stop().catch(() => {});
    topo?.stopAll();
    await node?.teardown().catch((e: unknown) => log(`teardown: ${(e as Error).message}`));
  }
  const finishedAt = new Date();
  const bench: BenchResult = {
    schema: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
    quick: opts.quick,
    rounds: opts.rounds,
    sizes,
    machine: { cpus: cpus().length, kernel: release(), loadavgAtStart: loadavg() },
    pinning: `taskset: client processes on CPU ${CLIENT_CPU}, servers (C echo/sink, nginx) on CPU ${SERVER_CPU}, every proxy (HAProxy, nginx stream, weft; client- and server-side) on CPU ${PROXY_CPU}`,
    tools: {
      haproxy: haproxyVersion() ?? 'missing',
      nginxStream: nginxStreamModule() === undefined ? 'missing: apt package libnginx-mod-stream' : 'present',
      h2load: spawnSync('h2load', ['--version']).status === 0 ? 'present (not used: pingpong http is the open-loop generator)' : 'missing (apt package nghttp2-client); pingpong http is the open-loop generator',
    },
    arms: results.map((r) => ({ ...r, summary: summarize(r.rounds) })),
    extras: opts.extras ? await extras(log) : { skipped: opts.quick ? 'not run with --quick' : 'not run with --no-extras' },
  };
  bench.targets = targets(bench);
  return bench;
}

function loadavg(): number[] {
  try {
    return (spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.split(' ').slice(0, 3)).map(Number);
  } catch {
    return [];
  }
}

function brief(key: string, r: Record<string, number>): string {
  const f = (n: number | undefined, d = 1) => (n === undefined ? '-' : n.toFixed(d));
  if (key === 'latency') return `p50 ${f(r.p50)} µs p99 ${f(r.p99)} µs`;
  if (key === 'rtps') return `${f(r.rtps, 0)} rt/s`;
  if (key === 'connrate') return `${f(r.cps, 0)} conn/s`;
  if (key === 'bulk') return `${f(r.gbps, 2)} Gbit/s`;
  return `p50 ${f(r.p50)} µs p99 ${f(r.p99)} µs ${r.completed}/${r.requests}`;
}

export function writeResults(bench: BenchResult, outDir: string): { json: string; md: string; png: string } {
  mkdirSync(outDir, { recursive: true });
  const stamp = bench.startedAt.replace(/[:.]/g, '-');
  const json = `${JSON.stringify(bench, null, 2)}\n`;
  const file = join(outDir, `${stamp}${bench.quick ? '-quick' : ''}.json`);
  writeFileSync(file, json);
  writeFileSync(join(outDir, bench.quick ? 'latest-quick.json' : 'latest.json'), json);
  const md = markdown(bench);
  const mdFile = join(outDir, bench.quick ? 'latest-quick.md' : 'latest.md');
  writeFileSync(mdFile, md);
  const png = join(outDir, bench.quick ? 'latest-quick.png' : 'latest.png');
  writeFileSync(png, renderChart(bench));
  return { json: file, md: mdFile, png };
}

async function main(): Promise<number> {
  let opts: RunOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    return 2;
  }
  if (opts.render) {
    const bench = JSON.parse(readFileSync(opts.render, 'utf8')) as BenchResult;
    bench.targets = targets(bench);
    const base = opts.render.replace(/\.json$/, '');
    writeFileSync(opts.render, `${JSON.stringify(bench, null, 2)}\n`);
    writeFileSync(`${base}.md`, markdown(bench));
    writeFileSync(`${base}.png`, renderChart(bench));
    process.stdout.write(markdown(bench));
    return 0;
  }
  const bench = await runBench(opts);
  const files = writeResults(bench, opts.outDir);
  process.stdout.write(markdown(bench));
  process.stderr.write(`[bench] wrote ${files.json}, ${files.md}, ${files.png} in ${bench.seconds.toFixed(0)} s\n`);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
