// The tools a TPROXY plan runs through: `ip` and `iptables-*-restore` with bounded time, the
// iptables backend detection, and the drop of an nft mangle table left empty. apply.ts is
// the executor proper (apply with rollback, cleanup).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ErrorCodes, WeftError } from '../../errors/index.js';
import type { IptablesBackendSetting } from '../common.js';
import type { Family } from './plan.js';
import { isEmptyMangle } from './plan-restore.js';

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

/**
 * `*tables-*-save` answers are remembered until another iptables tool runs: backend detection
 * and the executor read the same tables, and each run of a tool costs milliseconds of the
 * pod's start. (`ip` does not change what iptables shows.)
 */
export function withSaveCache(run: Runner): Runner {
  const saved = new Map<string, RunResult>();
  return (argv, input) => {
    const tool = argv[0] ?? '';
    const isSave = input === undefined && argv.length === 1 && /tables-[a-z]+-save$/.test(tool);
    if (!isSave) {
      // An iptables tool can change its family's tables; ip6tables-* only IPv6's.
      const family = /^ip6tables-/.test(tool) ? 'ip6tables-' : /^iptables-/.test(tool) ? 'iptables-' : tool === 'ip' ? null : '';
      if (family !== null) for (const k of [...saved.keys()]) if (k.startsWith(family)) saved.delete(k);
      return run(argv, input);
    }
    const key = argv[0] ?? '';
    const hit = saved.get(key);
    if (hit) return hit;
    const r = run(argv);
    saved.set(key, r);
    return r;
  };
}

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

export interface BackendChoice {
  backend: Backend;
  /** Why, as `--dry-run` prints it. */
  reason: string;
}

interface SaveProbe {
  /** Rule count per family; null where the save did not run. */
  rules: [number | null, number | null];
  /** The IPv4 save's failure, '' when it ran. */
  error: string;
}

/**
 * Whether any iptables-legacy table exists in this network namespace: the kernel lists them in
 * /proc/net/ip{,6}_tables_names (iptables-nft registers none). None: legacy holds no rule, and
 * its tools need not run.
 */
export function legacyTablesExist(procNet = '/proc/net'): boolean {
  return ['ip_tables_names', 'ip6_tables_names'].some((f) => {
    try {
      return readFileSync(`${procNet}/${f}`, 'utf8').trim() !== '';
    } catch {
      return false; // x_tables not loaded: no legacy table can exist
    }
  });
}

function probe(run: Runner, backend: Backend): SaveProbe {
  const rs = ([4, 6] as const).map((f) => run([`${f === 4 ? 'iptables' : 'ip6tables'}-${backend}-save`]));
  const count = (r: RunResult) => (r.code === 0 ? r.stdout.split('\n').filter((l) => l.startsWith('-A ')).length : null);
  const v4 = rs[0]!;
  return { rules: [count(v4), count(rs[1]!)], error: v4.code === 0 ? '' : `${(v4.stderr || v4.stdout).trim().split('\n')[0] ?? ''} (exit ${v4.code})` };
}

const total = (p: SaveProbe): number => (p.rules[0] ?? 0) + (p.rules[1] ?? 0);

/**
 * Like the image would: the backend that already holds rules wins (the node's kube-proxy or
 * CNI chose it); with none, iptables-nft when it actually works here (its save runs: the tool
 * is there and the kernel has nf_tables), else iptables-legacy.
 */
export function chooseBackend(setting: IptablesBackendSetting, run: Runner = runTool, legacyTables: () => boolean = legacyTablesExist): BackendChoice {
  if (setting !== 'auto') return { backend: setting, reason: 'set by --iptables-backend' };
  const legacy = legacyTables() ? probe(run, 'legacy') : null;
  const nft = probe(run, 'nft');
  if (legacy && legacy.rules[0] !== null && total(legacy) > 0 && total(nft) === 0) return { backend: 'legacy', reason: `iptables-legacy holds ${total(legacy)} rule(s), iptables-nft none` };
  if (nft.rules[0] !== null) return { backend: 'nft', reason: total(nft) > 0 ? `iptables-nft holds ${total(nft)} rule(s)` : 'no rules in either backend; iptables-nft works' };
  const fallback = legacy ?? probe(run, 'legacy');
  if (fallback.rules[0] !== null) return { backend: 'legacy', reason: `iptables-nft-save fails: ${nft.error}; iptables-legacy works` };
  throw new WeftError(
    ErrorCodes.MISSING_FEATURE,
    `no usable iptables backend: neither iptables-nft-save nor iptables-legacy-save runs (are they on PATH?): ${nft.error}; ${fallback.error}`,
    { field: '--iptables-backend' },
  );
}

export const detectBackend = (setting: IptablesBackendSetting, run: Runner = runTool, legacyTables?: () => boolean): Backend => chooseBackend(setting, run, legacyTables).backend;

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

/**
 * iptables-nft creates the mangle table on first use; when nothing but weft was in it, it goes
 * too, so the pod's ruleset reads as it did before weft. A replacing restore of an empty
 * `*mangle` does it: iptables-nft implements a table flush as deleting the table (its
 * built-in chains come back on next use). Only the iptables tools are needed, not `nft`,
 * which the image does not carry.
 */
export function dropEmptyNftMangle(run: Runner, tools: IptablesTools, f: Family): boolean {
  if (tools.backend !== 'nft') return false;
  const after = run(tools.save(f));
  if (after.code !== 0 || !isEmptyMangle(after.stdout)) return false;
  if (run(tools.replace(f), '*mangle\nCOMMIT\n').code !== 0) return false;
  const check = run(tools.save(f));
  return check.code === 0 && !/^\*mangle$/m.test(check.stdout);
}
