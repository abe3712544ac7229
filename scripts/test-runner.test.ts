// scripts/test.mjs counts what a file did, not only what it printed: pointed at the
// fixtures in scripts/fixtures/runner/, each way a test file can crash, exit or skip must
// land in the final "N passed, N failed, N skipped" line exactly once.
import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './helm.js';

const fixtures = join(repoRoot, 'scripts', 'fixtures', 'runner');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  last: string;
}

/** The runner as CI calls it, without the TAP_* environment of the tap run around us. */
function runner(filter?: string): Promise<Run> {
  return runnerWith([`--dir=${fixtures}`, ...(filter ? [filter] : [])]);
}

function runnerWith(flags: string[]): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TAP|_TAPJS)/.test(k) && k !== 'NODE_OPTIONS'));
  const args = [join(repoRoot, 'scripts', 'test.mjs'), ...flags];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: repoRoot, env, encoding: 'utf8', timeout: 180_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const lines = stdout.trimEnd().split('\n');
      const status = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ status, stdout, stderr, last: lines[lines.length - 1] ?? '' });
    });
  });
}

const CASES: [file: string, counted: string, why: string][] = [
  ['crash-import.test.js', '0 passed, 1 failed, 0 skipped', 'a throw at import is one failure, not "no tests found"'],
  ['exit-code.test.js', '1 passed, 1 failed, 0 skipped', 'passing tests, then exitCode=3: the file fails once'],
  ['exit-mid-test.test.js', '1 passed, 1 failed, 0 skipped', 'process.exit(1) in the middle of a test'],
  ['uncaught-after.test.js', '1 passed, 1 failed, 0 skipped', 'an uncaught throw outside any test'],
  ['signal.test.js', '1 passed, 1 failed, 0 skipped', 'killed by SIGKILL mid-test'],
  ['skip-all.test.js', '0 passed, 0 failed, 1 skipped', 't.plan(0, reason) is one skipped file'],
  ['no-tests.test.js', '0 passed, 1 failed, 0 skipped', 'a file that tests nothing fails'],
  ['mixed.test.js', '2 passed, 1 failed, 1 skipped', 'ordinary results are counted test by test'],
];

// Independent runs: start them together (each tap run costs seconds of CPU).
const whole = runner();
const one = runner('crash-import');
const unmatched = runner('no-such-file');
const skipOnly = runner('skip-all');

t.test('every fixture file is counted as what it did', async (t) => {
  const r = await whole;
  for (const [file, counted, why] of CASES) {
    const line = new RegExp(`^# counted \\S*${file.replace(/\./g, '\\.')}: (.*)$`, 'm').exec(r.stdout)?.[1];
    t.equal(line, counted, `${file}: ${why}`);
  }
  t.equal(r.last, '6 passed, 7 failed, 2 skipped', 'the totals are the sum of the files');
  t.equal(r.status, 1, 'failures make the run fail');
});

t.test('a filter runs only its file, and a crash alone still fails the run', async (t) => {
  const r = await one;
  t.equal(r.last, '0 passed, 1 failed, 0 skipped');
  t.equal(r.status, 1);
});

t.test('a filter that matches no file fails instead of passing silently', async (t) => {
  const r = await unmatched;
  t.equal(r.last, '0 passed, 1 failed, 0 skipped');
  t.match(r.stderr, /no test file matches no-such-file/);
  t.equal(r.status, 1);
});

t.test('a run of only self-skipping files exits 0', async (t) => {
  const r = await skipOnly;
  t.equal(r.last, '0 passed, 0 failed, 1 skipped');
  t.equal(r.status, 0);
});

t.test('pure e2e tests (*.unit.test.js) run with the unit tests, never also as e2e', async (t) => {
  const list = (flag: string) => runnerWith(['--no-build', flag, 'sandbox/plan.unit']);
  const e2e = await list('--e2e');
  t.match(e2e.stderr, /no test file matches sandbox\/plan\.unit/, 'not in the e2e set');
  const unit = await list('--unit');
  t.match(unit.stdout, /^# counted dist\/e2e\/sandbox\/plan\.unit\.test\.js: \d+ passed, 0 failed/m, 'in the unit set');
  t.equal(unit.status, 0);
});
