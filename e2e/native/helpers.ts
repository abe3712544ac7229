// Helpers for the native addon's root tests: a private network namespace (prefix wfna-) and
// running a small ESM script against the compiled facade in a child process.
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Absolute URL of the compiled facade, for child scripts. */
export const FACADE_URL = new URL('../../pkg/native/index.js', import.meta.url).href;
export const SUPPORT_URL = new URL('../../pkg/native/test-support.js', import.meta.url).href;
export const IS_ROOT = process.getuid?.() === 0;

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Creates netns `wfna-<tag>-<pid>` with lo up; remove() deletes it (idempotent). */
export function makeNetns(tag: string): { name: string; exec: (cmd: string, args: string[]) => string; remove: () => void } {
  const name = `wfna-${tag}-${process.pid}`;
  sh('ip', ['netns', 'add', name]);
  try {
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    sh('ip', ['netns', 'del', name]);
    throw e;
  }
  return {
    name,
    exec: (cmd, args) => sh('ip', ['netns', 'exec', name, cmd, ...args]),
    remove: () => {
      try {
        sh('ip', ['netns', 'del', name]);
      } catch {
        // already gone
      }
    },
  };
}

/** Runs `node --input-type=module -e script` under an optional wrapper (e.g. ip netns exec,
 * setpriv) and parses the last stdout line as JSON. */
export function runNodeScript(script: string, wrapper: string[] = [], timeoutMs = 20000): Promise<unknown> {
  const argv = [...wrapper, process.execPath, '--input-type=module', '-e', script];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: fileURLToPath(new URL('.', import.meta.url)) });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last));
      } catch {
        reject(new Error(`child exited ${code}: ${err || out}`));
      }
    });
  });
}
