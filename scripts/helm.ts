// How gen and the chart tests reach the real helm binary: scripts/get-helm.sh fetches it
// once into .toolchain/helm/ (or honours WEFT_HELM) and prints its path.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from src (scripts/) or compiled (dist/scripts/) alike. */
export const repoRoot = fileURLToPath(new URL(import.meta.url.includes('/dist/scripts/') ? '../../' : '../', import.meta.url));
export const chartDir = join(repoRoot, 'charts', 'weft');

let cached: string | undefined;

/** Path of helm; throws with get-helm.sh's own message when it cannot be had. */
export function helmPath(): string {
  if (cached !== undefined) return cached;
  const r = spawnSync('bash', [join(repoRoot, 'scripts', 'get-helm.sh')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scripts/get-helm.sh failed: ${r.stderr.trim() || r.stdout.trim()}`);
  cached = r.stdout.trim().split('\n').pop() ?? '';
  return cached;
}

export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function helm(args: string[], extraEnv: Record<string, string> = {}): HelmResult {
  // A private HOME-less config: no repositories, plugins or caches of the machine leak in.
  const env = { ...process.env, HELM_CACHE_HOME: join(repoRoot, '.toolchain', 'helm', 'cache'), HELM_CONFIG_HOME: join(repoRoot, '.toolchain', 'helm', 'config'), HELM_DATA_HOME: join(repoRoot, '.toolchain', 'helm', 'data'), ...extraEnv };
  const r = spawnSync(helmPath(), args, { encoding: 'utf8', env, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** `helm template` of charts/weft with --set pairs and values files; throws on failure. */
export function renderChart(opts: { set?: Record<string, string>; values?: string[]; namespace?: string; release?: string; kubeVersion?: string; includeCrds?: boolean } = {}): string {
  const args = ['template', opts.release ?? 'weft', chartDir, '--namespace', opts.namespace ?? 'weft-system', '--kube-version', opts.kubeVersion ?? '1.29.0'];
  if (opts.includeCrds) args.push('--include-crds');
  for (const [k, v] of Object.entries(opts.set ?? {})) args.push('--set', `${k}=${v}`);
  for (const f of opts.values ?? []) args.push('--values', f);
  const r = helm(args);
  if (r.status !== 0) throw new Error(`helm ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}
