// .ci/run always ends with a count, names the step that failed, and treats a generated file
// git does not know yet as drift. Run on a throwaway copy of the repository's skeleton with
// stand-in setup, npm and node, so each step can be made to fail on its own.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helm.js';

type Step = 'setup' | 'lint' | 'image' | 'gen-changes' | 'gen-adds' | 'none';

function ci(fail: Step): { status: number | null; last: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'weft-ci-'));
  try {
    const exe = (path: string, body: string) => {
      writeFileSync(join(dir, path), `#!/bin/bash\n${body}\n`);
      chmodSync(join(dir, path), 0o755);
    };
    for (const d of ['.ci', 'scripts', 'manifests', 'charts', 'bin']) mkdirSync(join(dir, d));
    copyFileSync(join(repoRoot, '.ci', 'run'), join(dir, '.ci', 'run'));
    exe('scripts/setup.sh', fail === 'setup' ? 'echo "apt-get: no network" >&2; exit 100' : 'true');
    exe('scripts/env.sh', 'true');
    exe('scripts/build-image-stage.sh', fail === 'image' ? 'exit 2' : 'true');
    writeFileSync(join(dir, 'manifests', 'install.yaml'), 'kind: Namespace\n');
    // Stand-ins on PATH: npm runs lint/gen, node answers --version and "runs the tests".
    exe('bin/npm', [
      'case "$*" in',
      `  "run -s lint") ${fail === 'lint' ? 'exit 1' : 'true'} ;;`,
      `  "run -s gen") ${fail === 'gen-changes' ? 'echo "kind: Changed" > manifests/install.yaml' : fail === 'gen-adds' ? 'echo "kind: New" > manifests/new.yaml' : 'true'} ;;`,
      '  --version) echo 10.0.0 ;;',
      'esac',
    ].join('\n'));
    exe('bin/node', 'case "$1" in --version) echo v24.0.0 ;; *) echo "7 passed, 0 failed, 1 skipped" ;; esac');
    const git = (...args: string[]) => spawnSync('git', ['-c', 'user.email=ci@test', '-c', 'user.name=ci', ...args], { cwd: dir });
    git('init', '-q');
    git('add', '.');
    git('commit', '-qm', 'skeleton');
    const r = spawnSync('bash', ['.ci/run'], { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH ?? ''}` } });
    return { status: r.status, last: r.stdout.trimEnd().split('\n').pop() ?? '', stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const FAILS: [Step, RegExp][] = [
  ['setup', /step 'setup \(scripts\/setup\.sh\)' failed \(exit 100\)/],
  ['lint', /step 'lint' failed/],
  ['image', /step 'image build stage .*' failed \(exit 2\)/],
  ['gen-changes', /step 'generated files drift .*' failed/],
  ['gen-adds', /generated files not committed:\n\?\? manifests\/new\.yaml[\s\S]*step 'generated files drift/],
];

for (const [step, stderr] of FAILS) {
  t.test(`a failing ${step} step ends with a count and is named`, async (t) => {
    const r = ci(step);
    t.not(r.status, 0);
    t.equal(r.last, '0 passed, 1 failed');
    t.match(r.stderr, stderr);
  });
}

t.test('when every step passes, the test runner has the last word', async (t) => {
  const r = ci('none');
  t.equal(r.status, 0, r.stderr);
  t.equal(r.last, '7 passed, 0 failed, 1 skipped');
  t.notMatch(r.stderr, /failed/);
});
