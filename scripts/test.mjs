#!/usr/bin/env node
// Runs every test with tap and ends with one plain line, "N passed, N failed, N skipped",
// counting each top-level test of each file. A file is also judged as a whole: one that
// tap reports `not ok` without a failing test of its own (thrown at import, non-zero exit
// code, process.exit or a signal mid-test, a timeout) counts as exactly one failure; one
// that reports no tests counts as failed unless it skipped itself (`t.plan(0, reason)`),
// which counts as one skipped. Unit tests (dist/{cmd,pkg,scripts} and dist/e2e/**/*.unit.test.js)
// run in parallel; kernel e2e tests (the rest of dist/e2e) run one file at a time since they
// share the kernel.
//   node scripts/test.mjs [--unit|--e2e] [--no-build] [--dir=PATH] [file-filter...]
// --dir=PATH runs the *.test.js files under PATH instead (in parallel, like unit tests);
// scripts/test-runner.test.ts points it at scripts/fixtures/runner/.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Parser } from 'tap-parser';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const only = args.includes('--unit') ? 'unit' : args.includes('--e2e') ? 'e2e' : 'all';
const dirArg = args.find((a) => a.startsWith('--dir='))?.slice('--dir='.length);
const filters = args.filter((a) => !a.startsWith('--'));

if (!args.includes('--no-build') && dirArg === undefined) {
  const b = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) {
    console.error('test: npm run build failed');
    console.log('0 passed, 1 failed, 0 skipped');
    process.exit(1);
  }
}

function findTests(dir) {
  const out = [];
  let entries = [];
  try { entries = readdirSync(dir); } catch { return out; }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (e.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}
const pick = (files) => files.filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
// Pure tests of e2e code (`*.unit.test.js`, e.g. the sandbox's planners) need no root: they
// run with the unit tests, once, and never in the e2e set.
const isUnitTest = (f) => f.endsWith('.unit.test.js');
const e2eFiles = dirArg !== undefined ? [] : findTests(join(root, 'dist', 'e2e'));
const unit = pick(dirArg !== undefined ? findTests(resolve(dirArg)) : [...['cmd', 'pkg', 'scripts'].flatMap((d) => findTests(join(root, 'dist', d))), ...e2eFiles.filter(isUnitTest)]);
const e2e = pick(e2eFiles.filter((f) => !isUnitTest(f)));

const totals = { pass: 0, fail: 0, skip: 0 };
const selected = (only !== 'e2e' ? unit.length : 0) + (only !== 'unit' ? e2e.length : 0);
if (filters.length > 0 && selected === 0) {
  // A mistyped filter must not look like a green run.
  console.error(`test: no test file matches ${filters.join(' ')}`);
  console.log('0 passed, 1 failed, 0 skipped');
  process.exit(1);
}
// tap's own words when a file printed no test at all (crashed first, or wrote none).
const NO_TESTS = 'no tests found';

/** Counts one file: its top-level test points (`tests`) and tap's verdict on the file. */
function countFile(tests, verdict) {
  const own = { pass: 0, fail: 0, skip: 0 };
  for (const r of tests) {
    if (r.skip || r.todo) own.skip++;
    else if (r.ok) own.pass++;
    else own.fail++;
  }
  const skipReason = typeof verdict.skip === 'string' ? verdict.skip : '';
  if (tests.length === 0) {
    // Nothing ran: a deliberate skip-all is one skip; anything else (a crash at import, a
    // file with no tests) is one failure.
    if (verdict.ok && verdict.skip && skipReason !== NO_TESTS) own.skip++;
    else own.fail++;
  } else if (!verdict.ok && own.fail === 0) {
    own.fail++; // its tests passed, yet the file failed (exit code, signal, exit mid-run)
  }
  return own;
}

function runTap(files, jobs, timeout) {
  return new Promise((resolve) => {
    if (files.length === 0) return resolve(0);
    const child = spawn(
      join(root, 'node_modules', '.bin', 'tap'),
      ['-R', 'tap', '--disable-coverage', '--allow-empty-coverage', `--jobs=${jobs}`, `--timeout=${timeout}`, ...files.map((f) => relative(root, f))],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TAP_RCFILE: '/dev/null' } },
    );
    const parser = new Parser();
    const points = new Map(); // file name -> its top-level test points
    const judged = new Set();
    parser.on('child', (file) => {
      const tests = [];
      points.set(file.name, tests);
      file.on('assert', (res) => tests.push(res));
    });
    // Each file is one test point of tap's own top level: its verdict on the whole file.
    parser.on('assert', (verdict) => {
      judged.add(verdict.name);
      const own = countFile(points.get(verdict.name) ?? [], verdict);
      console.log(`# counted ${verdict.name}: ${own.pass} passed, ${own.fail} failed, ${own.skip} skipped`);
      totals.pass += own.pass;
      totals.fail += own.fail;
      totals.skip += own.skip;
    });
    child.stdout.on('data', (d) => process.stdout.write(d));
    child.stdout.pipe(parser);
    child.on('close', (code) => {
      parser.end();
      // A file tap never got to (killed run, runner timeout) is a failure, not a silence.
      const missing = files.map((f) => relative(root, f)).filter((f) => ![...judged].some((n) => n.includes(f)));
      for (const f of missing) console.log(`not ok - ${f} # never reported: counted as failed`);
      totals.fail += missing.length;
      resolve(code ?? 1);
    });
  });
}

const codes = [];
if (only !== 'e2e') codes.push(await runTap(unit, 2, 300));
if (only !== 'unit' && e2e.length > 0) {
  if (process.getuid?.() !== 0) {
    console.log(`# ${e2e.length} e2e files skipped: they need root (network namespaces, netfilter, bpf)`);
    totals.skip += e2e.length;
  } else {
    codes.push(await runTap(e2e, 1, 900));
  }
}
const failed = totals.fail > 0 || codes.some((c) => c !== 0);
if (totals.fail === 0 && failed) totals.fail = 1; // tap itself failed without a failing test point
console.log(`${totals.pass} passed, ${totals.fail} failed, ${totals.skip} skipped`);
process.exit(failed ? 1 : 0);
