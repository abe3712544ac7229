// `weft init --mode tproxy`: resolve families and backend, plan, then print (--dry-run),
// apply, or clean up. The planner is pure (plan.ts); every side effect goes through apply.ts.
import type { InitConfig } from '../common.js';
import { addArgv } from './ip-objects.js';
import { planInput, planTproxy, type Family, type TproxyPlan } from './plan.js';
import { parseMangle, renderApply } from './plan-restore.js';
import { applyPlan, cleanupAll, planCleanup, type CleanupStep } from './apply.js';
import { chooseBackend, hasGlobalIpv6, iptablesTools, runTool, withSaveCache, type BackendChoice, type Runner } from './exec.js';

export { planTproxy, planInput } from './plan.js';

export function resolveFamilies(c: InitConfig, hasIpv6: () => boolean = hasGlobalIpv6): Family[] {
  if (c.ipv6 === 'on') return [4, 6];
  if (c.ipv6 === 'off') return [4];
  return hasIpv6() ? [4, 6] : [4];
}

const backendLine = (b: BackendChoice | string): string => (typeof b === 'string' ? `iptables backend ${b}` : `iptables backend ${b.backend} (${b.reason})`);

/** The plan as a person reads it: the ip commands, then each restore file (fresh pod). */
export function renderPlan(plan: TproxyPlan, backend: BackendChoice | string): string {
  const out = [`# weft init --mode tproxy: ${backendLine(backend)}, IPv${plan.rulesets.map((r) => r.family).join(' + IPv')}`, '# policy routing'];
  out.push(...plan.ipObjects.map((o) => addArgv(o).join(' ')));
  for (const rs of plan.rulesets) {
    out.push(`# ${rs.family === 4 ? 'iptables' : 'ip6tables'}-restore --noflush <<EOF`);
    out.push(renderApply(rs, parseMangle('')).trimEnd(), 'EOF');
  }
  return out.join('\n') + '\n';
}

/** What `--cleanup` would remove, as read from the kernel now. */
export function renderCleanupPlan(steps: readonly CleanupStep[], errors: readonly string[], backend: BackendChoice | string): string {
  const out = [`# weft init --mode tproxy --cleanup (dry run: nothing changed): ${backendLine(backend)}`];
  if (steps.length === 0) out.push('# nothing of weft to remove');
  for (const s of steps) {
    out.push(`# ${s.what}`);
    if (s.input === undefined) out.push(s.argv.join(' '));
    else {
      out.push(`${s.argv.join(' ')} <<EOF`, s.input.trimEnd(), 'EOF');
      if (s.argv[0]?.includes('-nft-')) out.push(`# then the IPv${s.family} mangle table itself, if that leaves it empty (a replacing restore of an empty *mangle)`);
    }
  }
  for (const e of errors) out.push(`# could not read: ${e}`);
  return out.join('\n') + '\n';
}

export interface TproxyInitIO {
  run?: Runner;
  stdout?: NodeJS.WritableStream;
  hasIpv6?: () => boolean;
}

export async function runTproxyInit(c: InitConfig, io: TproxyInitIO = {}): Promise<number> {
  const run = withSaveCache(io.run ?? runTool);
  const stdout = io.stdout ?? process.stdout;
  // --dry-run still says which backend it would use; without a usable one it says why.
  let backend: BackendChoice | string;
  try {
    backend = chooseBackend(c.iptablesBackend, run);
  } catch (e) {
    if (!c.dryRun) throw e;
    backend = `none usable: ${(e as Error).message}`;
  }
  const tools = typeof backend === 'string' ? null : iptablesTools(backend.backend);
  if (c.cleanup) {
    if (c.dryRun) {
      const { steps, errors } = planCleanup(tools, run);
      stdout.write(renderCleanupPlan(steps, errors, backend));
      return 0;
    }
    const removed = cleanupAll(tools!, run);
    await logInfo({ mode: 'tproxy', backend: tools!.backend, removed }, removed.length ? 'removed weft interception' : 'nothing of weft to remove');
    return 0;
  }
  const families = resolveFamilies(c, io.hasIpv6);
  const plan = planTproxy(planInput(c, families));
  if (c.dryRun) {
    stdout.write(renderPlan(plan, backend));
    return 0;
  }
  const applied = applyPlan(plan, tools!, run);
  await logInfo({ mode: 'tproxy', backend: tools!.backend, families, applied }, 'tproxy interception programmed');
  return 0;
}

/** The logger is loaded once the work is done: pino is a noticeable share of the init's start. */
async function logInfo(fields: Record<string, unknown>, msg: string): Promise<void> {
  const { createLogger } = await import('../../log/index.js');
  createLogger('init').info(fields, msg);
}
