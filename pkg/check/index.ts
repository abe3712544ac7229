// `weft check`: probe this host for what each interception mode needs and give the verdict.
import { detectBackend } from '../intercept/tproxy/exec.js';
import { verdict, type CheckReport, type FeatureId, type Mode, type ProbeResult } from './features.js';
import { probeBpf, probeBpffs, probeBtf, probeCgroup2, probeNetfilter } from './probes.js';

export { FEATURE_IDS, MODES, renderTable, verdict, type CheckReport, type FeatureId, type Mode } from './features.js';

export interface CheckOptions {
  modes: readonly Mode[];
  simulateMissing?: readonly FeatureId[];
  /** Scratch namespace and temp-dir name prefix. */
  prefix?: string;
}

export function runChecks(opts: CheckOptions): CheckReport {
  const prefix = opts.prefix ?? 'weft-check';
  let preferred: 'nft' | 'legacy' | null = null;
  try {
    preferred = detectBackend('auto');
  } catch {
    preferred = null;
  }
  const results = {
    ...probeNetfilter(`${prefix}-${process.pid}`, preferred),
    ...probeBpf(),
    cgroup2: probeCgroup2(),
    btf: probeBtf(),
    bpffs: probeBpffs(prefix),
  } as Record<FeatureId, ProbeResult>;
  return verdict(results, opts.modes, opts.simulateMissing ?? []);
}
