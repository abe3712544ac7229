// The one executor of a TPROXY plan. Apply: each step runs with its undo recorded; on any
// failure what was applied is undone, in reverse, and the error names the failing step.
// A re-run converges: weft's objects the plan no longer has (another --mark or --route-table,
// IPv6 now off, an older weft's chains) are removed, identical ones are kept. Cleanup removes
// everything tagged as weft's, whatever flags the apply had.
import { ErrorCodes, WeftError } from '../../errors/index.js';
import { addArgv, diffIpObjects, keyOf, labelOf, listArgv, LIST_INPUT, parseListing, type FoundIpObject, type IpObject } from './ip-objects.js';
import type { Family, TproxyPlan } from './plan.js';
import { parseMangle, renderApply, renderCleanup, renderRollback, type MangleState } from './plan-restore.js';
import { dropEmptyNftMangle, runTool, type IptablesTools, type RunResult, type Runner } from './exec.js';

const FAMILIES: readonly Family[] = [4, 6];

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

const restoreName = (tools: IptablesTools, f: Family): string => `${f === 4 ? 'iptables' : 'ip6tables'}-restore (IPv${f}, ${tools.backend})`;

/** weft's tagged rules and routes of one family; `error` set when `ip` could not list them. */
export function listWeftIpObjects(run: Runner, f: Family): { found: FoundIpObject[]; error: RunResult | null } {
  const r = run(listArgv(f), LIST_INPUT);
  if (r.code !== 0) return { found: [], error: r };
  try {
    return { found: parseListing(r.stdout, f), error: null };
  } catch (e) {
    return { found: [], error: { code: 1, stdout: '', stderr: `unreadable ip -j output: ${(e as Error).message}` } };
  }
}

const delArgv = (o: IpObject): string[] => addArgv(o).map((a, i) => (i === 3 ? 'del' : a));

/** A route add refused with "File exists": is the same route there, made by someone else? */
function foreignTwin(run: Runner, o: IpObject): boolean {
  const r = run(listArgv(o.family), LIST_INPUT);
  return r.code === 0 && parseListing(r.stdout, o.family, false).some((f) => f.key === keyOf(o));
}

/** Apply the plan; on failure undo what was applied and throw naming the step. Returns the steps. */
export function applyPlan(plan: TproxyPlan, tools: IptablesTools, run: Runner = runTool): string[] {
  const applied: Applied[] = [];
  const notes: string[] = [];
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
  const planned = new Set(plan.rulesets.map((r) => r.family));

  // Policy routing: what is tagged as weft's now, in both families (a family now off may hold some).
  const found: FoundIpObject[] = [];
  for (const f of FAMILIES) {
    const listed = listWeftIpObjects(run, f);
    if (listed.error && planned.has(f)) check(`list IPv${f} rules and routes (${listArgv(f).join(' ')})`, listed.error);
    found.push(...listed.found);
  }
  const diff = diffIpObjects(plan.ipObjects, found);
  for (const f of FAMILIES) {
    // One `ip -batch` per family; it stops at the first failure, and a fresh listing tells
    // which objects made it (those get their undo), which one failed, and what is left.
    let todo = diff.add.filter((o) => o.family === f);
    while (todo.length > 0) {
      const r = run(['ip', `-${f}`, '-batch', '-'], todo.map((o) => addArgv(o).slice(2).join(' ')).join('\n') + '\n');
      const present = r.code === 0 ? null : new Set(listWeftIpObjects(run, f).found.map((x) => x.key));
      const failedAt = present ? todo.findIndex((o) => !present.has(keyOf(o))) : todo.length;
      for (const o of todo.slice(0, failedAt < 0 ? todo.length : failedAt)) applied.push({ step: labelOf(o), undo: () => mustRun(delArgv(o)) });
      const failed = failedAt >= 0 ? todo[failedAt] : undefined;
      if (!failed) {
        check(`ip -${f} -batch (${todo.map(labelOf).join(', ')})`, r);
        break;
      }
      // Routes are unique per table and destination: one someone else added is used, not owned.
      if (failed.kind === 'route' && /File exists/.test(r.stderr) && foreignTwin(run, failed)) {
        notes.push(`${labelOf(failed)} (present, not weft's: kept)`);
        todo = todo.slice(failedAt + 1);
        continue;
      }
      check(`${labelOf(failed)} (${addArgv(failed).join(' ')})`, r);
    }
  }

  for (const rs of plan.rulesets) {
    const name = restoreName(tools, rs.family);
    const before = readMangle(run, tools, rs.family);
    check(`${name}: read current rules`, before.r);
    check(name, run(tools.restore(rs.family), renderApply(rs, before.state)));
    applied.push({ step: name, undo: undoRestore(run, tools, rs.family, before) });
  }

  // What an earlier run programmed and this plan does not have.
  for (const f of FAMILIES.filter((f) => !planned.has(f))) {
    const before = readMangle(run, tools, f);
    const text = before.r.code === 0 ? renderCleanup(before.state) : null;
    if (text === null) continue;
    const name = `remove IPv${f} chains (IPv${f} not planned)`;
    check(name, run(tools.restore(f), text));
    applied.push({ step: name, undo: undoRestore(run, tools, f, before) });
    dropEmptyNftMangle(run, tools, f);
  }
  for (const s of diff.remove) {
    const name = `remove ${s.label}`;
    check(name, run(s.del));
    applied.push({ step: name, undo: () => mustRun(s.add) });
  }
  return [...applied.map((a) => a.step), ...notes];
}

function undoRestore(run: Runner, tools: IptablesTools, f: Family, before: { state: MangleState; r: RunResult }): () => void {
  return () => {
    const text = renderRollback(before.state, readMangle(run, tools, f).state);
    if (text !== null) {
      const r = run(tools.restore(f), text);
      if (r.code !== 0) throw new Error(`${tools.restore(f).join(' ')}: ${r.stderr.trim()}`);
    }
    if (!/^\*mangle$/m.test(before.r.stdout)) dropEmptyNftMangle(run, tools, f);
  };
}

/** One thing cleanup would do: what it is, and the command (with its stdin) that does it. */
export interface CleanupStep {
  what: string;
  family: Family;
  argv: string[];
  input?: string;
  /** An iptables step: with iptables-nft, a mangle table it leaves empty is dropped after it. */
  iptables: boolean;
}

/** What `--cleanup` would remove now, read from the kernel (changes nothing). */
export function planCleanup(tools: IptablesTools | null, run: Runner = runTool): { steps: CleanupStep[]; errors: string[] } {
  const steps: CleanupStep[] = [];
  const errors: string[] = [];
  for (const f of FAMILIES) {
    if (!tools) continue;
    const { state, r } = readMangle(run, tools, f);
    if (r.code !== 0) {
      // No IPv6 in this kernel, or no such tables: nothing of weft's can be there.
      if (f === 4) errors.push(`read IPv4 rules (${tools.save(f).join(' ')}): ${r.stderr.trim()}`);
      continue;
    }
    const text = renderCleanup(state);
    if (text !== null) steps.push({ what: `IPv${f} chains and jumps`, family: f, argv: tools.restore(f), input: text, iptables: true });
  }
  for (const f of FAMILIES) {
    const listed = listWeftIpObjects(run, f);
    if (listed.error && f === 4) errors.push(`list IPv4 rules and routes: ${listed.error.stderr.trim()}`);
    for (const o of listed.found) steps.push({ what: o.label, family: f, argv: o.del, iptables: false });
  }
  return { steps, errors };
}

/** Remove weft's jumps, chains, ip rules and routes; returns what was removed. Errors are
 * collected so one failure does not leave the rest behind, then thrown together. */
export function cleanupAll(tools: IptablesTools, run: Runner = runTool): string[] {
  const { steps, errors } = planCleanup(tools, run);
  const removed: string[] = [];
  for (const s of steps) {
    const r = run(s.argv, s.input);
    if (r.code !== 0) {
      errors.push(`${s.what}: ${r.stderr.trim()}`);
      continue;
    }
    removed.push(s.what);
    if (s.iptables && dropEmptyNftMangle(run, tools, s.family)) removed.push(`empty IPv${s.family} mangle table`);
  }
  if (errors.length) throw new WeftError(ErrorCodes.APPLY_FAILED, `cleanup incomplete: ${errors.join('; ')}`, { field: 'cleanup' });
  return removed;
}
