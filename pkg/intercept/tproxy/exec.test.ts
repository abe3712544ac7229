// The executor against a scripted fake runner: order of steps, idempotency checks, and
// rollback of everything applied when a later step fails.
import t from 'tap';
import { initSchema } from '../common.js';
import { planInput, planTproxy } from './plan.js';
import { applyPlan, cleanupPlan, detectBackend, iptablesTools, type RunResult } from './exec.js';

const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
const plan = planTproxy(planInput(initSchema.parse({}), [4, 6]));

function fakeRunner(failOn?: RegExp) {
  const calls: string[] = [];
  const run = (argv: readonly string[], input?: string): RunResult => {
    const line = argv.join(' ');
    calls.push(input ? `${line} <<${input.split('\n').filter((l) => /^-[IDX] /.test(l)).join('|')}` : line);
    if (failOn?.test(line)) return { code: 1, stdout: '', stderr: 'boom' };
    return ok();
  };
  return { calls, run };
}

t.test('apply runs ip steps, then the v4 and v6 restores', async (t) => {
  const f = fakeRunner();
  const steps = applyPlan(plan, iptablesTools('nft'), f.run);
  t.same(steps, ['ipv4-fwmark-rule', 'ipv4-local-route', 'ipv6-fwmark-rule', 'ipv6-local-route', 'iptables-restore (IPv4, nft)', 'ip6tables-restore (IPv6, nft)']);
  t.ok(f.calls.includes('ip -4 rule add fwmark 0x539/0x539 lookup 133'));
  t.ok(f.calls.some((c) => c.startsWith('iptables-nft-restore --noflush <<-I PREROUTING 1')));
});

t.test('ip objects already present are not added again (and not removed on rollback)', async (t) => {
  const calls: string[] = [];
  const run = (argv: readonly string[]): RunResult => {
    calls.push(argv.join(' '));
    if (argv.join(' ') === 'ip -4 rule show') return ok('32765:\tfrom all fwmark 0x539/0x539 lookup 133\n');
    if (argv[0] === 'ip6tables-nft-restore') return { code: 2, stdout: '', stderr: 'ip6tables-restore: line 3 failed' };
    return ok();
  };
  t.throws(() => applyPlan(plan, iptablesTools('nft'), run), {
    code: 'WEFT_ERR_APPLY_FAILED',
    message: /step "ip6tables-restore \(IPv6, nft\)" failed \(exit 2\): ip6tables-restore: line 3 failed; rolled back: iptables-restore \(IPv4, nft\), ipv6-local-route, ipv6-fwmark-rule, ipv4-local-route$/,
  });
  t.notOk(calls.includes('ip -4 rule add fwmark 0x539/0x539 lookup 133'));
  t.notOk(calls.includes('ip -4 rule del fwmark 0x539/0x539 lookup 133'));
  t.ok(calls.includes('ip -6 rule del fwmark 0x539/0x539 lookup 133'));
});

t.test('a failing first step names it and says nothing was applied', async (t) => {
  const f = fakeRunner(/^ip -4 rule add/);
  t.throws(() => applyPlan(plan, iptablesTools('legacy'), f.run), { message: /step "ipv4-fwmark-rule \(ip -4 rule add .*\)" failed .*boom; nothing had been applied/ });
});

t.test('a missing tool is reported by name', async (t) => {
  const run = (argv: readonly string[]): RunResult => (argv[0] === 'ip' ? ok() : { code: 127, stdout: '', stderr: `${argv[0]}: not found on PATH` });
  t.throws(() => applyPlan(plan, iptablesTools('nft'), run), { message: /iptables-nft-save: not found on PATH/ });
});

t.test('backend detection prefers the backend that already has rules', async (t) => {
  const withRules = (legacy: string, nft: string | null) => (argv: readonly string[]): RunResult => {
    if (argv[0]?.includes('legacy')) return ok(legacy);
    return nft === null ? { code: 127, stdout: '', stderr: 'nf' } : ok(nft);
  };
  const onPath = (nft: boolean) => (tool: string) => nft || !tool.includes('nft');
  t.equal(detectBackend('auto', withRules('-A INPUT -j ACCEPT\n', ''), onPath(true)), 'legacy');
  t.equal(detectBackend('auto', withRules('', ''), onPath(true)), 'nft');
  t.equal(detectBackend('auto', withRules('-A X\n', '-A Y\n'), onPath(true)), 'nft');
  t.equal(detectBackend('auto', withRules('', null), onPath(false)), 'legacy');
  t.equal(detectBackend('legacy', withRules('', ''), onPath(true)), 'legacy');
  t.throws(() => detectBackend('auto', () => ({ code: 127, stdout: '', stderr: '' }), onPath(false)), { code: 'WEFT_ERR_MISSING_FEATURE' });
});

t.test('cleanup removes what is there and skips what is not', async (t) => {
  const calls: string[] = [];
  const run = (argv: readonly string[]): RunResult => {
    const line = argv.join(' ');
    calls.push(line);
    if (line === 'iptables-nft-save') return ok('*mangle\n:WEFT_OUTPUT - [0:0]\n-A OUTPUT -m comment --comment "weft/jump-output" -j WEFT_OUTPUT\nCOMMIT\n');
    if (line === 'ip6tables-nft-save') return { code: 1, stdout: '', stderr: 'no ipv6' };
    if (line === 'ip -4 route show table all') return ok('local default dev lo table 133 scope host \n');
    return ok();
  };
  const removed = cleanupPlan(plan, iptablesTools('nft'), [4, 6], run);
  t.same(removed, ['IPv4 chains and jumps', 'ipv4-local-route']);
  t.ok(calls.includes('ip -4 route del local 0.0.0.0/0 dev lo table 133'));
  t.notOk(calls.some((c) => c.startsWith('ip -4 rule del')));
});

t.test('an nft mangle table left empty by cleanup is deleted with iptables-nft-restore, not nft', async (t) => {
  const calls: string[] = [];
  let saves = 0;
  const run = (argv: readonly string[], input?: string): RunResult => {
    calls.push(`${argv.join(' ')}${input ? ` <<${input.replaceAll('\n', '|')}` : ''}`);
    if (argv[0] === 'iptables-nft-save') {
      saves++;
      // 1: weft's rules; 2: after removing them, an empty table; 3: after the replace, gone.
      if (saves === 1) return ok('*mangle\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:WEFT_OUTPUT - [0:0]\n-A OUTPUT -m comment --comment "weft/jump-output" -j WEFT_OUTPUT\nCOMMIT\n');
      if (saves === 2) return ok('*mangle\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n');
      return ok('');
    }
    return argv[0]?.startsWith('ip6') ? { code: 1, stdout: '', stderr: 'no ipv6' } : ok();
  };
  const removed = cleanupPlan(plan, iptablesTools('nft'), [4, 6], run);
  t.ok(removed.includes('empty IPv4 mangle table'), removed.join(', '));
  t.ok(calls.includes('iptables-nft-restore <<*mangle|COMMIT|'), 'a replacing restore of an empty *mangle');
  t.notOk(calls.some((c) => c.startsWith('nft ')), 'the nft tool is never run (the image has none)');
});
