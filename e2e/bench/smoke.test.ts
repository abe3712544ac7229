// The benchmark harness works: `--quick` runs every arm once on a sandbox node and writes a
// JSON result, markdown and a PNG chart. Asserts structure (every arm either produced numbers
// for every workload or says why it was skipped), never timings.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { isEmpty, leftovers } from '../sandbox/index.js';
import { haproxyVersion } from './arms/plain.js';
import type { BenchResult } from './report.js';
import { parseArgs, runBench, writeResults } from './run.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'the bench needs root (network namespaces, cgroups)');
  process.exit(0);
}

const ARMS = ['direct', 'haproxy', 'haproxy-splice', 'nginx-stream', 'weft-direct', 'weft-tproxy', 'weft-ebpf', 'weft-ebpf-skmsg'];
const WORKLOADS = ['latency.p50', 'latency.p99', 'latency.p999', 'rtps.rtps', 'connrate.cps', 'bulk.gbps', 'bulk.secondsPerGiB', 'http1000.p50', 'http1000.p99', 'http5000.p99'];

t.test('flags', async (t) => {
  t.same(parseArgs(['--quick']).rounds, 1, '--quick is one round');
  t.same(parseArgs([]).rounds, 3, 'three rounds by default');
  t.throws(() => parseArgs(['--rounds', '0']), /--rounds/);
  t.throws(() => parseArgs(['--fast']), /unknown argument --fast/);
});

t.test('--quick runs every arm and writes the results', async (t) => {
  // Not the repository's results/: a test run must not replace the committed latest.* files.
  const out = mkdtempSync(join(tmpdir(), 'wfbnsmoke-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const bench = await runBench({ ...parseArgs(['--quick']), outDir: out, log: (l) => t.comment(l) });
  t.ok(isEmpty(leftovers('wfbn')), 'the sandbox node is gone');

  t.same(bench.arms.map((a) => a.name), ARMS, 'every arm is listed, none dropped');
  for (const arm of bench.arms) {
    if (arm.skipped) {
      t.match(arm.skipped, /\S/, `${arm.name}: skipped with a reason`);
      continue;
    }
    const round = arm.rounds[0] ?? {};
    // The harness's own arms must measure everything; a weft arm may hit a weft bug, which must
    // then be reported as an error naming the workload, never dropped silently.
    const ours = ['direct', 'haproxy', 'haproxy-splice'].includes(arm.name);
    for (const k of WORKLOADS) {
      const ok = Number.isFinite(round[k]) && (round[k] ?? 0) > 0;
      const reported = arm.errors.some((e) => e.includes(k.split('.')[0]!));
      t.ok(ok || (!ours && reported), `${arm.name}: ${k} is a number (${round[k]})${ok ? '' : ` or reported: ${arm.errors.join('; ')}`}`);
    }
    if (arm.name !== 'direct') t.ok(Object.keys(round).some((k) => k.startsWith('http1000.cpuPer1k.')) || arm.errors.some((e) => e.includes('http1000')), `${arm.name}: proxy CPU measured`);
  }
  const direct = bench.arms.find((a) => a.name === 'direct');
  t.notOk(direct?.skipped, 'the direct arm always runs');
  if (haproxyVersion()) t.ok(bench.arms.some((a) => a.name === 'haproxy' && !a.skipped), 'HAProxy (installed here) runs');
  else t.match(bench.arms.find((a) => a.name === 'haproxy')?.skipped ?? '', /haproxy is not installed/, 'without HAProxy its arms say so');

  const files = writeResults(bench, out);
  const json = JSON.parse(readFileSync(files.json, 'utf8')) as BenchResult;
  t.equal(json.schema, 1);
  t.equal(json.arms.length, ARMS.length);
  t.ok(Array.isArray(json.targets), 'targets are in the JSON');
  for (const target of json.targets ?? []) t.type(target.met, 'boolean', `${target.arm}: ${target.what} has met/not met`);
  const md = readFileSync(files.md, 'utf8');
  t.match(md, /## Targets/);
  for (const a of ARMS) t.match(md, new RegExp(`\\| ${a} \\|`), `${a} appears in the markdown`);
  const png = readFileSync(files.png);
  t.same([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'the chart is a PNG');
  t.ok(png.length > 500, 'the chart has content');
});
