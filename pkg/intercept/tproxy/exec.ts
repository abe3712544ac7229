// The one executor of a TPROXY plan: runs `ip` and `iptables-restore` with bounded time,
// applies each step with its undo recorded, and on any failure undoes what it applied, in
// reverse, then throws naming the failing step. Also detects the iptables backend.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { ErrorCodes, WeftError } from '../../errors/index.js';
import type { IptablesBackendSetting } from '../common.js';
import type { Family, IpStep, TproxyPlan } from './plan.js';
import { isEmptyMangle, parseMangle, renderApply, renderCleanup, renderRollback, type MangleState } from './plan-restore.js';

export type Backend = 'nft' | 'legacy';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}
export type Runner = (argv: readonly string[], input?: string) => RunResult;

const TOOL_TIMEOUT_MS = 10_000;

/** Run a tool; a missing tool is exit 127 with a message, never a throw. */
export const runTool: Runner = (argv, input) => {
  const [cmd, ...args] = argv;
  const r = spawnSync(cmd ?? '', args, { input: input ?? '', encoding: 'utf8', timeout: TOOL_TIMEOUT_MS });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? `${cmd}: not found on PATH` : code === 'ETIMEDOUT' ? `${cmd}: timed out after ${TOOL_TIMEOUT_MS} ms` : `${cmd}: ${r.error.message}`;
    return { code: 127, stdout: '', stderr: why };
  }
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
};

export interface IptablesTools {
  backend: Backend;
  save: (f: Family) => string[];
  restore: (f: Family) => string[];
  /** A restore that replaces each table it names (no --noflush). */
  replace: (f: Family) => string[];
}

export function iptablesTools(backend: Backend): IptablesTools {
  const bin = (f: Family, what: 'save' | 'restore') => `${f === 4 ? 'iptables' : 'ip6tables'}-${backend}-${what}`;
  return {
    backend,
    // Not `-t mangle`: with iptables-nft that creates the table when it is absent.
    save: (f) => [bin(f, 'save')],
    restore: (f) => [bin(f, 'restore'), '--noflush'],
    replace: (f) => [bin(f, 'restore')],
  };
}

export function isOnPath(tool: string, path = process.env.PATH ?? ''): boolean {
  return path.split(':').some((d) => d !== '' && existsSync(`${d}/${tool}`));
}

const countRules = (run: Runner, argv: string[]): number | null => {
  const r = run(argv);
  return r.code === 0 ? r.stdout.split('\n').filter((l) => l.startsWith('-A ')).length : null;
};

/**
 * Like the image would: the backend that already holds rules wins (the node's kube-proxy or
 * CNI chose it); with none, nft when the kernel and tools have it, else legacy.
 */
export function detectBackend(setting: IptablesBackendSetting, run: Runner = runTool, onPath: (tool: string) => boolean = isOnPath): Backend {
  if (setting !== 'auto') return setting;
  const rules = (b: Backend) =>
    [4, 6].map((f) => countRules(run, [`${f === 4 ? 'iptables' : 'ip6tables'}-${b}-save`])).filter((n): n is number => n !== null);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  // Legacy first: with no legacy rules (the usual case) nft wins without asking it anything.
  const legacy = rules('legacy');
  const nftTools = onPath('iptables-nft-save');
  if (sum(legacy) === 0 && nftTools) return 'nft';
  const nft = nftTools ? rules('nft') : [];
  if (sum(legacy) > 0 && sum(nft) === 0) return 'legacy';
  if (nft.length > 0) return 'nft';
  if (legacy.length > 0) return 'legacy';
  throw new WeftError(ErrorCodes.MISSING_FEATURE, 'no usable iptables backend: neither iptables-nft-save nor iptables-legacy-save runs (are they on PATH?)', {
    field: '--iptables-backend',
  });
}

/** IPv6 for `--ipv6 auto`: the pod has a global-scope IPv6 address. */
export function hasGlobalIpv6(ifInet6 = '/proc/net/if_inet6'): boolean {
  try {
    // columns: address ifindex prefixlen scope flags name; scope 00 is global
    return readFileSync(ifInet6, 'utf8')
      .split('\n')
      .some((l) => l.trim().split(/\s+/)[3] === '00');
  } catch {
    return false;
  }
}

const isPresent = (s: IpStep, out: string): boolean => out.split('\n').some((l) => ` ${l.trim()} `.includes(` ${s.presentPattern} `));

/**
 * iptables-nft creates the mangle table on first use; when nothing but weft was in it, it goes
 * too, so the pod's ruleset reads as it did before weft. A replacing restore of an empty
 * `*mangle` does it: iptables-nft implements a table flush as deleting the table (its
 * built-in chains come back on next use). Only the iptables tools are needed, not `nft`,
 * which the image does not carry.
 */
function dropEmptyNftMangle(run: Runner, tools: IptablesTools, f: Family): boolean {
  if (tools.backend !== 'nft') return false;
  const after = run(tools.save(f));
  if (after.code !== 0 || !isEmptyMangle(after.stdout)) return false;
  if (run(tools.replace(f), '*mangle\nCOMMIT\n').code !== 0) return false;
  const check = run(tools.save(f));
  return check.code === 0 && !/^\*mangle$/m.test(check.stdout);
}

interface Applied {
  step: string;
  undo: () => void;
}

function fail(step: string, r: RunResult, rolledBack: string[], rollbackErrors: string[]): never {
  const why = (r.stderr || r.stdout).trim().split('\n').slice(0, 5).join(' | ');
  const rb = rolledBack.length ? `; rolled back: ${rolledBack.join(', ')}` : '; nothing had been applied';
  const rbe = rollbackErrors.length ? `; ROLLBACK FAILED: ${rollbackErrors.join('; ')}` : '';
  throw new WeftError(ErrorCodes.APPLY_FAILED, `step "${step}" failed (exit ${r.code}): ${why}${rb}${rbe}`, { field: step });
}

const readMangle = (run: Runner, tools: IptablesTools, f: Family): { state: MangleState; r: RunResult } => {
  const r = run(tools.save(f));
  return { state: parseMangle(r.code === 0 ? r.stdout : ''), r };
};

/** Apply the plan; on failure undo what was applied and throw naming the step. */
export function applyPlan(plan: TproxyPlan, tools: IptablesTools, run: Runner = runTool): string[] {
  const applied: Applied[] = [];
  const rollback = (): { done: string[]; errors: string[] } => {
    const done: string[] = [];
    const errors: string[] = [];
    for (const a of applied.reverse()) {
      try {
        a.undo();
        done.push(a.step);
      } catch (e) {
        errors.push(`${a.step}: ${(e as Error).message}`);
      }
    }
    return { done, errors };
  };
  const check = (step: string, r: RunResult): void => {
    if (r.code === 0) return;
    const { done, errors } = rollback();
    fail(step, r, done, errors);
  };
  const mustRun = (argv: readonly string[], input?: string): void => {
    const r = run(argv, input);
    if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr.trim()}`);
  };

  for (const s of plan.ipSteps) {
    if (s.addFailsIfPresent) {
      const added = run(s.add);
      if (added.code !== 0 && /File exists/.test(added.stderr)) continue;
      check(`${s.purpose} (${s.add.join(' ')})`, added);
    } else {
      const shown = run(s.show);
      check(`${s.purpose} (${s.show.join(' ')})`, shown);
      if (isPresent(s, shown.stdout)) continue;
      check(`${s.purpose} (${s.add.join(' ')})`, run(s.add));
    }
    applied.push({ step: s.purpose, undo: () => mustRun(s.del) });
  }
  for (const rs of plan.rulesets) {
    const name = `${rs.family === 4 ? 'iptables' : 'ip6tables'}-restore (IPv${rs.family}, ${tools.backend})`;
    const before = readMangle(run, tools, rs.family);
    check(`${name}: read current rules`, before.r);
    check(name, run(tools.restore(rs.family), renderApply(rs, before.state)));
    applied.push({
      step: name,
      undo: () => {
        const text = renderRollback(before.state, readMangle(run, tools, rs.family).state);
        if (text !== null) mustRun(tools.restore(rs.family), text);
        if (!/^\*mangle$/m.test(before.r.stdout)) dropEmptyNftMangle(run, tools, rs.family);
      },
    });
  }
  return applied.map((a) => a.step);
}

/** Remove weft's jumps, chains, ip rules and routes; returns what was removed. Errors are
 * collected so one failure does not leave the rest behind, then thrown together. */
export function cleanupPlan(plan: TproxyPlan, tools: IptablesTools, families: readonly Family[], run: Runner = runTool): string[] {
  const removed: string[] = [];
  const errors: string[] = [];
  for (const f of families) {
    const { state, r } = readMangle(run, tools, f);
    if (r.code !== 0) {
      // No IPv6 in this kernel, or no such tables: nothing of weft's can be there.
      if (f === 6) continue;
      errors.push(`read IPv${f} rules: ${r.stderr.trim()}`);
      continue;
    }
    const text = renderCleanup(state);
    if (text === null) continue;
    const res = run(tools.restore(f), text);
    if (res.code !== 0) {
      errors.push(`remove IPv${f} chains: ${res.stderr.trim()}`);
      continue;
    }
    removed.push(`IPv${f} chains and jumps`);
    if (dropEmptyNftMangle(run, tools, f)) removed.push(`empty IPv${f} mangle table`);
  }
  for (const s of plan.ipSteps) {
    const shown = run(s.show);
    if (shown.code !== 0 || !isPresent(s, shown.stdout)) continue;
    const res = run(s.del);
    if (res.code === 0) removed.push(s.purpose);
    else errors.push(`${s.purpose}: ${res.stderr.trim()}`);
  }
  if (errors.length) throw new WeftError(ErrorCodes.APPLY_FAILED, `cleanup incomplete: ${errors.join('; ')}`, { field: 'cleanup' });
  return removed;
}
