// The executor against a small fake of `ip` (rules and routes, with protocols, as `ip -N -j`
// prints them) and scripted iptables: order of steps, convergence of re-runs, cleanup by tag,
// and rollback of everything applied when a later step fails.
import t from 'tap';
import { initSchema } from '../common.js';
import { planInput, planTproxy, type Family } from './plan.js';
import { applyPlan, cleanupAll, planCleanup } from './apply.js';
import { iptablesTools, type RunResult } from './exec.js';

const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
const planFor = (flags: Record<string, unknown> = {}, families: Family[] = [4, 6]) => planTproxy(planInput(initSchema.parse(flags), families));

type Obj = Record<string, string | number>;

/** Enough of `ip` and the iptables tools for the executor. */
function fakeKernel(opts: { fail?: RegExp } = {}) {
  const rules: Record<Family, Obj[]> = { 4: [], 6: [] };
  const routes: Record<Family, Obj[]> = { 4: [], 6: [] };
  const mangle: Record<Family, string> = { 4: '', 6: '' };
  const calls: string[] = [];
  const opt = (a: readonly string[], k: string): string | undefined => {
    const i = a.indexOf(k);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const run = (argv: readonly string[], input?: string): RunResult => {
    const line = argv.join(' ');
    const f = (argv.includes('-6') || argv[0]?.startsWith('ip6') ? 6 : 4) as Family;
    if (argv[0] === 'ip' && argv.includes('-batch') && input?.startsWith('rule show')) {
      calls.push(line);
      return ok(`${JSON.stringify(rules[f])}\n${JSON.stringify(routes[f])}\n`);
    }
    if (argv[0] === 'ip' && argv.includes('-batch')) {
      // Each line as its own command (recorded so), stopping at the first failure like ip does.
      const lines = (input ?? '').split('\n').filter(Boolean);
      for (const [i, l] of lines.entries()) {
        const r = run(['ip', `-${f}`, ...l.split(' ')]);
        if (r.code !== 0) return { ...r, stderr: `${r.stderr}\nCommand failed -:${i + 1}` };
      }
      return ok();
    }
    calls.push(line);
    if (opts.fail?.test(line)) return { code: 2, stdout: '', stderr: 'boom' };
    if (argv[0] === 'ip' && argv[2] === 'rule') {
      const [mark, mask] = (opt(argv, 'fwmark') ?? '').split('/');
      const o: Obj = { priority: Number(opt(argv, 'priority') ?? 32765 - rules[f].length), src: 'all', fwmark: mark ?? '', ...(mask ? { fwmask: mask } : {}), table: opt(argv, 'lookup') ?? '' };
      const proto = opt(argv, 'protocol');
      if (proto) o.protocol = proto;
      if (argv[3] === 'add') rules[f].push(o);
      else {
        const i = rules[f].findIndex((r) => r.fwmark === o.fwmark && r.table === o.table && (proto === undefined || r.protocol === proto) && (!opt(argv, 'priority') || r.priority === o.priority));
        if (i < 0) return { code: 2, stdout: '', stderr: 'RTNETLINK answers: No such file or directory' };
        rules[f].splice(i, 1);
      }
      return ok();
    }
    if (argv[0] === 'ip' && argv[2] === 'route') {
      const table = opt(argv, 'table') ?? '';
      const proto = opt(argv, 'proto');
      const i = routes[f].findIndex((r) => r.table === table);
      if (argv[3] === 'add') {
        if (i >= 0) return { code: 2, stdout: '', stderr: 'RTNETLINK answers: File exists' };
        routes[f].push({ type: 'local', dst: 'default', dev: 'lo', table, ...(proto ? { protocol: proto } : {}) });
      } else {
        if (i < 0 || (proto && routes[f][i]?.protocol !== proto)) return { code: 2, stdout: '', stderr: 'RTNETLINK answers: No such process' };
        routes[f].splice(i, 1);
      }
      return ok();
    }
    if (/-save$/.test(argv[0] ?? '')) return ok(mangle[f]);
    if (/-restore$/.test(argv[0] ?? '')) {
      // Keep only what the tests look at: which weft chains exist after the transaction.
      const chains = new Set((mangle[f].match(/^:WEFT_\S+/gm) ?? []).map((c) => c.slice(1)));
      for (const l of (input ?? '').split('\n')) {
        if (/^:WEFT_/.test(l)) chains.add(l.slice(1).split(' ')[0]!);
        if (/^-X /.test(l)) chains.delete(l.slice(3));
      }
      mangle[f] = chains.size ? `*mangle\n${[...chains].map((c) => `:${c} - [0:0]`).join('\n')}\nCOMMIT\n` : '';
      return ok();
    }
    return { code: 127, stdout: '', stderr: `${argv[0]}: not found on PATH` };
  };
  return { run, calls, rules, routes, mangle };
}

const tools = iptablesTools('nft');

t.test('a fresh apply tags its rules and routes, then restores IPv4 and IPv6', async (t) => {
  const k = fakeKernel();
  const steps = applyPlan(planFor(), tools, k.run);
  t.same(steps, ['ipv4-fwmark-rule', 'ipv4-local-route', 'ipv6-fwmark-rule', 'ipv6-local-route', 'iptables-restore (IPv4, nft)', 'ip6tables-restore (IPv6, nft)']);
  t.ok(k.calls.includes('ip -4 rule add fwmark 0x539 lookup 133 protocol 87'));
  t.ok(k.calls.includes('ip -6 route add local ::/0 dev lo table 133 proto 87'));
});

t.test('a re-run adds nothing; other --mark/--route-table, or IPv6 off, removes the old objects', async (t) => {
  const k = fakeKernel();
  applyPlan(planFor(), tools, k.run);
  k.calls.length = 0;
  t.same(applyPlan(planFor(), tools, k.run), ['iptables-restore (IPv4, nft)', 'ip6tables-restore (IPv6, nft)'], 'the same plan: only the (idempotent) restores');
  t.notOk(k.calls.some((c) => / (add|del) /.test(c)), 'no ip object added or removed');

  applyPlan(planFor({ mark: '0x10', routeTable: '200' }), tools, k.run);
  t.same(k.rules[4].map((r) => `${r.fwmark} ${r.table}`), ['0x10 200'], 'the old rule went, the new one is there');
  t.same(k.routes[4].map((r) => r.table), ['200']);

  const steps = applyPlan(planFor({ mark: '0x10', routeTable: '200' }, [4]), tools, k.run);
  t.same(k.rules[6], [], 'IPv6 off: its rule went');
  t.same(k.routes[6], []);
  t.equal(k.mangle[6], '', 'and its weft chains');
  t.ok(steps.includes('remove IPv6 chains (IPv6 not planned)'), steps.join(', '));
});

t.test('someone else’s identical rule and route are used, never removed', async (t) => {
  const k = fakeKernel();
  k.rules[4].push({ priority: 100, src: 'all', fwmark: '0x539', table: '133' });
  k.routes[4].push({ type: 'local', dst: 'default', dev: 'lo', table: '133' });
  const steps = applyPlan(planFor({}, [4]), tools, k.run);
  t.ok(steps.includes("ipv4-local-route (present, not weft's: kept)"), steps.join(', '));
  t.equal(k.rules[4].length, 2, 'weft adds its own tagged rule beside the foreign one');
  const removed = cleanupAll(tools, k.run).filter((s) => s.startsWith('ipv4'));
  t.match(removed, [/^ipv4 rule \d+: fwmark 0x539 lookup 133 protocol 87$/], 'cleanup removes weft’s rule only');
  t.equal(removed.length, 1);
  t.same(k.rules[4], [{ priority: 100, src: 'all', fwmark: '0x539', table: '133' }], 'the foreign rule stays');
  t.equal(k.routes[4].length, 1, 'the foreign route stays');
});

t.test('cleanup removes every tagged object whatever flags the apply had', async (t) => {
  const k = fakeKernel();
  applyPlan(planFor({ mark: '0x77', routeTable: '177' }), tools, k.run);
  const preview = planCleanup(tools, k.run);
  t.same(preview.errors, []);
  t.equal(preview.steps.length, 6, 'two chain sets, two rules, two routes');
  t.same(k.rules[4].length, 1, 'a preview changes nothing');
  cleanupAll(tools, k.run);
  t.same([k.rules[4], k.rules[6], k.routes[4], k.routes[6], k.mangle[4], k.mangle[6]], [[], [], [], [], '', '']);
  t.same(cleanupAll(tools, k.run), [], 'cleanup of nothing');
});

t.test('a failing step names it and rolls back everything applied, stale removals too', async (t) => {
  const first = fakeKernel({ fail: /^ip -4 rule add/ });
  t.throws(() => applyPlan(planFor(), tools, first.run), { code: 'WEFT_ERR_APPLY_FAILED', message: /step "ipv4-fwmark-rule \(ip -4 rule add .*\)" failed .*boom \| Command failed -:1; nothing had been applied/ });

  // A re-run with another mark fails removing the old IPv6 rule, after the old IPv4 one went.
  const k = fakeKernel({ fail: /^ip -6 rule del priority/ });
  applyPlan(planFor(), tools, k.run);
  const before = JSON.stringify([k.rules, k.routes, k.mangle]);
  t.throws(() => applyPlan(planFor({ mark: '0x10' }), tools, k.run), {
    message: /step "remove ipv6 rule 32765: fwmark 0x539 lookup 133 protocol 87" failed \(exit 2\): boom; rolled back: remove ipv4 rule 32765: .*, ip6tables-restore \(IPv6, nft\), iptables-restore \(IPv4, nft\), ipv6-fwmark-rule, ipv4-fwmark-rule$/,
  });
  t.equal(JSON.stringify([k.rules, k.routes, k.mangle]), before, 'rules (at their priorities), routes and chains as they were');
});

t.test('a missing tool is reported by name', async (t) => {
  const run = (argv: readonly string[]): RunResult => (argv[0] === 'ip' ? ok(argv.includes('-batch') ? '[]\n[]\n' : '') : { code: 127, stdout: '', stderr: `${argv[0]}: not found on PATH` });
  t.throws(() => applyPlan(planFor(), tools, run), { message: /iptables-nft-save: not found on PATH/ });
});
