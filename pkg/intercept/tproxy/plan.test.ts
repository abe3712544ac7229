// Golden tests of the TPROXY planner: the printed plan (ip commands + restore files) for each
// kind of config. Regenerate with UPDATE_GOLDEN=1 after an intended change, and review the diff.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initSchema } from '../common.js';
import { planInput, planTproxy, type Family } from './plan.js';
import { renderPlan } from './index.js';

// dist/pkg/intercept/tproxy → the source tree's testdata
const dir = fileURLToPath(new URL('../../../../pkg/intercept/tproxy/testdata/', import.meta.url));

function golden(t: Test, name: string, got: string): void {
  const file = `${dir}${name}.txt`;
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, got);
    if (process.env.UPDATE_GOLDEN !== '1') t.fail(`golden ${name}.txt was missing; written, review it`);
  }
  t.equal(got, readFileSync(file, 'utf8'), `${name}.txt`);
}

const plan = (flags: Record<string, unknown>, families: Family[] = [4]): string =>
  renderPlan(planTproxy(planInput(initSchema.parse(flags), families)), 'nft');

const cases: [string, Record<string, unknown>, Family[]][] = [
  ['default', {}, [4]],
  [
    'every-exclusion',
    {
      excludeInboundPorts: '22,8081',
      excludeOutboundPorts: '5432,6379',
      excludeOutboundCidrs: '10.96.0.0/12,169.254.169.254,fd00:10::/64',
    },
    [4, 6],
  ],
  ['include-only-cidrs', { includeOutboundCidrs: '10.0.0.0/8,192.168.0.0/16,fd00::/8', excludeOutboundCidrs: '10.1.2.3/32' }, [4, 6]],
  ['proxy-mark', { proxyMark: '0x100' }, [4, 6]],
  ['ipv6', {}, [4, 6]],
  ['custom', { proxyUid: '2000', proxyGid: '2001', inboundPort: '16006', outboundPort: '16001', mark: '0x100', routeTable: '200' }, [4, 6]],
  ['many-ports', { excludeOutboundPorts: Array.from({ length: 20 }, (_, i) => 1000 + i).join(',') }, [4]],
];

for (const [name, flags, families] of cases) {
  t.test(`plan: ${name}`, async (t) => golden(t, name, plan(flags, families)));
}

t.test('every rule carries a weft/<purpose> comment and targets only weft chains or built-in jumps', async (t) => {
  const p = planTproxy(planInput(initSchema.parse({ excludeOutboundCidrs: '10.0.0.0/8' }), [4, 6]));
  for (const rs of p.rulesets) {
    for (const r of rs.rules) {
      t.match(r, /^-A WEFT_[A-Z]+ .*-m comment --comment weft\/[a-z0-9-]+ -j /, r);
    }
    for (const j of rs.jumps) t.match(j.spec, /--comment weft\/jump-/);
  }
});

t.test('the proxy is exempt by uid and by gid; admin and probe ports are never intercepted inbound', async (t) => {
  const text = plan({ proxyUid: '0', proxyGid: '1337' });
  t.match(text, /--uid-owner 0 .* -j RETURN/);
  t.match(text, /--gid-owner 1337 .* -j RETURN/);
  t.match(text, /--dports 15020,15021 .*weft\/exclude-inbound-port /);
  t.match(text, /--ctdir REPLY .*-j RETURN/, 'replies of inbound connections are never diverted');
});

t.test('CIDRs go only to their own family', async (t) => {
  const p = planTproxy(planInput(initSchema.parse({ excludeOutboundCidrs: '10.0.0.0/8,fd00::/8' }), [4, 6]));
  const [v4, v6] = p.rulesets;
  t.ok(v4?.rules.some((r) => r.includes('10.0.0.0/8')));
  t.notOk(v4?.rules.some((r) => r.includes('fd00::/8')));
  t.ok(v6?.rules.some((r) => r.includes('fd00::/8')));
  t.notOk(v6?.rules.some((r) => r.includes('10.0.0.0/8')));
});

t.test('marks are whole values, link-local IPv6 is never diverted, the proxy mark is exempt when set', async (t) => {
  const [v4, v6] = planTproxy(planInput(initSchema.parse({}), [4, 6])).rulesets;
  const all = [...(v4?.rules ?? []), ...(v6?.rules ?? [])];
  t.notOk(all.some((r) => /--mark 0x539\/0x539|--set-xmark 0x539\/0x539|--tproxy-mark 0x539\/0x539/.test(r)), 'no partial mask: other mark bits do not make a packet weft’s');
  t.ok(all.some((r) => r.includes('-m mark --mark 0x539 ')), 'exact mark match');
  t.notOk(v4?.rules.some((r) => r.includes('fe80::/10')));
  t.ok(v6?.rules.some((r) => r.startsWith('-A WEFT_OUTPUT -d fe80::/10 ') && r.endsWith('-j RETURN')), 'outbound link-local returns');
  t.ok(v6?.rules.some((r) => r.startsWith('-A WEFT_INBOUND -d fe80::/10 ') && r.endsWith('-j RETURN')), 'inbound link-local returns');
  t.notOk(all.some((r) => r.includes('weft/proxy-mark')), 'no --proxy-mark: no rule');
  const marked = planTproxy(planInput(initSchema.parse({ proxyMark: '42' }), [4])).rulesets[0]!.rules;
  const exempt = marked.findIndex((r) => r === '-A WEFT_OUTPUT -m mark --mark 0x2a -m comment --comment weft/proxy-mark -j RETURN');
  t.ok(exempt > 0, 'the proxy’s marked upstream packets return');
  t.ok(exempt < marked.findIndex((r) => r.includes('weft/outbound-mark')), 'before anything is marked');
});
