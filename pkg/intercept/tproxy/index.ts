// `weft init --mode tproxy`: resolve families and backend, plan, then print (--dry-run),
// apply, or clean up. The planner is pure (plan.ts); every side effect goes through exec.ts.
import type { InitConfig } from '../common.js';
import { createLogger } from '../../log/index.js';
import { planInput, planTproxy, type Family, type TproxyPlan } from './plan.js';
import { parseMangle, renderApply } from './plan-restore.js';
import { applyPlan, cleanupPlan, detectBackend, hasGlobalIpv6, iptablesTools, runTool, type Runner } from './exec.js';

export { planTproxy, planInput } from './plan.js';

export function resolveFamilies(c: InitConfig, hasIpv6: () => boolean = hasGlobalIpv6): Family[] {
  if (c.ipv6 === 'on') return [4, 6];
  if (c.ipv6 === 'off') return [4];
  return hasIpv6() ? [4, 6] : [4];
}

/** The plan as a person reads it: the ip commands, then each restore file (fresh pod). */
export function renderPlan(plan: TproxyPlan, backend: string): string {
  const out = [`# weft init --mode tproxy: iptables backend ${backend}, IPv${plan.rulesets.map((r) => r.family).join(' + IPv')}`, '# policy routing'];
  out.push(...plan.ipSteps.map((s) => s.add.join(' ')));
  for (const rs of plan.rulesets) {
    out.push(`# ${rs.family === 4 ? 'iptables' : 'ip6tables'}-restore --noflush <<EOF`);
    out.push(renderApply(rs, parseMangle('')).trimEnd(), 'EOF');
  }
  return out.join('\n') + '\n';
}

export interface TproxyInitIO {
  run?: Runner;
  stdout?: NodeJS.WritableStream;
  hasIpv6?: () => boolean;
}

export async function runTproxyInit(c: InitConfig, io: TproxyInitIO = {}): Promise<number> {
  const run = io.run ?? runTool;
  const stdout = io.stdout ?? process.stdout;
  const log = createLogger('init');
  const families: Family[] = c.cleanup ? [4, 6] : resolveFamilies(c, io.hasIpv6);
  const plan = planTproxy(planInput(c, families));
  if (c.dryRun) {
    stdout.write(renderPlan(plan, c.iptablesBackend));
    return 0;
  }
  const tools = iptablesTools(detectBackend(c.iptablesBackend, run));
  if (c.cleanup) {
    const removed = cleanupPlan(plan, tools, families, run);
    log.info({ mode: 'tproxy', backend: tools.backend, removed }, removed.length ? 'removed weft interception' : 'nothing of weft to remove');
    return 0;
  }
  const applied = applyPlan(plan, tools, run);
  log.info({ mode: 'tproxy', backend: tools.backend, families, applied }, 'tproxy interception programmed');
  return 0;
}
