#!/usr/bin/env node
// Runs every test with tap and ends with one plain line, "N passed, N failed, N skipped",
// counting each top-level test of each file (a file that dies before reporting counts as
// one failure). Unit tests (dist/{cmd,pkg,scripts}) run in parallel; kernel e2e tests
// (dist/e2e) run one file at a time since they share the kernel.
//   node scripts/test.mjs [--unit|--e2e] [--no-build] [file-filter...]
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Parser } from 'tap-parser';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const only = args.includes('--unit') ? 'unit' : args.includes('--e2e') ? 'e2e' : 'all';
const filters = args.filter((a) => !a.startsWith('--'));

if (!args.includes('--no-build')) {
  const b = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) {
    console.log('0 passed, 1 failed');
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
const unit = pick(['cmd', 'pkg', 'scripts'].flatMap((d) => findTests(join(root, 'dist', d))));
const e2e = pick(findTests(join(root, 'dist', 'e2e')));

const totals = { pass: 0, fail: 0, skip: 0 };

function runTap(files, jobs, timeout) {
  return new Promise((resolve) => {
    if (files.length === 0) return resolve(0);
    const child = spawn(
      join(root, 'node_modules', '.bin', 'tap'),
      ['-R', 'tap', '--disable-coverage', '--allow-empty-coverage', `--jobs=${jobs}`, `--timeout=${timeout}`, ...files.map((f) => relative(root, f))],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TAP_RCFILE: '/dev/null' } },
    );
    const parser = new Parser();
    const reported = new Set();
    parser.on('child', (file) => {
      reported.add(file.name);
      let counted = 0;
      file.on('assert', (res) => {
        counted++;
        if (res.skip || res.todo) totals.skip++;
        else if (res.ok) totals.pass++;
        else totals.fail++;
      });
      file.on('complete', (res) => {
        if (counted === 0 && !res.ok) totals.fail++;
      });
    });
    child.stdout.on('data', (d) => process.stdout.write(d));
    child.stdout.pipe(parser);
    child.on('close', (code) => {
      parser.end();
      // A file tap never got to (killed run, runner timeout) is a failure, not a silence.
      const missing = files.map((f) => relative(root, f)).filter((f) => ![...reported].some((n) => n.includes(f)));
      for (const f of missing) console.log(`not ok - ${f} # never reported: counted as failed`);
      totals.fail += missing.length;
      resolve(code ?? 1);
    });
  });
}

const codes = [];
if (only !== 'e2e') codes.push(await runTap(unit, 2, 300));
if (only !== 'unit') {
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
