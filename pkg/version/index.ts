// What `weft version` reports and what the injector stamps into weft.dev/injected.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { ROOT } from '../native/load.js';

export interface VersionInfo {
  weft: string;
  commit: string;
  node: string;
  addon: string;
  bpf: string;
}

export function weftVersion(): string {
  return (JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { version: string }).version;
}

function gitCommit(): string {
  if (process.env.WEFT_GIT_COMMIT) return process.env.WEFT_GIT_COMMIT;
  if (existsSync(`${ROOT}/COMMIT`)) return readFileSync(`${ROOT}/COMMIT`, 'utf8').trim();
  try {
    return execFileSync('git', ['-C', ROOT, 'rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

export async function versionInfo(): Promise<VersionInfo> {
  let addon = 'not built';
  let bpf = 'not built';
  try {
    const { loadAddon } = await import('../native/load.js');
    addon = `${loadAddon().version} (napi ${loadAddon().napiVersion})`;
  } catch {
    /* reported as not built */
  }
  const objDir = `${ROOT}/bpf/build`;
  if (existsSync(objDir)) {
    const { readdirSync } = await import('node:fs');
    const objs = readdirSync(objDir).filter((f) => f.endsWith('.bpf.o'));
    if (objs.length) bpf = `${weftVersion()} (${objs.length} objects)`;
  }
  return { weft: weftVersion(), commit: gitCommit(), node: process.version, addon, bpf };
}
