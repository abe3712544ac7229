// The fast path must give exactly what the zod schema gives, or step aside (null). Checked on
// the injector's real init args, every flag's plain and odd spellings, env vars, and random
// combinations of them.
import t, { type Test } from 'tap';
import { parseFlags } from '../cli/flags.js';
import { defaultValues } from '../api/values.js';
import { initArgs } from '../inject/containers.js';
import { resolveSettings } from '../inject/settings.js';
import { INIT_SUMMARY, initFlagSpecs, initSchema } from './common.js';
import { fastInitConfig } from './init-fast.js';

type Outcome = { ok: true; value: unknown } | { ok: false; error: string };

function viaSchema(argv: string[], env: NodeJS.ProcessEnv): Outcome {
  try {
    return { ok: true, value: parseFlags('init', INIT_SUMMARY, initFlagSpecs, initSchema, argv, env) };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

/** Same keys, same values, same types: what the runners receive. */
const canonical = (v: unknown): string => JSON.stringify(v, (_, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));

function agree(t: Test, argv: string[], env: NodeJS.ProcessEnv = {}): boolean {
  const fast = fastInitConfig(argv, env);
  if (fast === null) return false;
  const schema = viaSchema(argv, env);
  const what = `${argv.join(' ')} ${JSON.stringify(env)}`;
  if (!schema.ok) {
    t.fail(`${what}: the fast path accepted what the schema refuses: ${schema.error}`);
    return true;
  }
  if (canonical(fast) !== canonical(schema.value)) t.fail(`${what}: fast ${canonical(fast)} != schema ${canonical(schema.value)}`);
  t.ok(Object.isFrozen(fast), `${what}: frozen`);
  return true;
}

t.test('the injector’s init args take the fast path and give the schema’s config', async (t) => {
  const v = defaultValues();
  const cases: Record<string, string>[] = [
    {},
    { intercept: 'ebpf' },
    { 'weft.dev/exclude-inbound-ports': '22,8081', 'weft.dev/exclude-outbound-ports': '5432', 'weft.dev/exclude-outbound-cidrs': '10.96.0.0/12,fd00::/8' },
    { 'weft.dev/include-outbound-cidrs': '10.0.0.0/8,192.168.0.0/16' },
    { 'weft.dev/include-outbound-cidrs': '*' },
  ];
  for (const ann of cases) {
    const args = initArgs(resolveSettings(ann, v), v).slice(1); // without the 'init' command
    t.ok(agree(t, args), `fast path taken for ${JSON.stringify(ann)}: ${args.join(' ')}`);
  }
  t.ok(agree(t, [], {}), 'no flags at all');
});

const VALUES: Record<string, string[]> = {
  mode: ['tproxy', 'ebpf', 'TPROXY', ''],
  'proxy-uid': ['0', '1337', '4294967294', '4294967295', '-1', '1e3', ' 7', '0x10', ''],
  'proxy-gid': ['1337', '007', 'x'],
  'inbound-port': ['15006', '1', '65535', '0', '65536', '80.5'],
  'outbound-port': ['15001', '15006', '8080'],
  'exclude-inbound-ports': ['', '22', '22, 15020 ,22', '1,65535', '0', '22,,23', 'a'],
  'exclude-outbound-ports': ['', '5432,6379', '70000'],
  'exclude-outbound-cidrs': ['', '10.0.0.1', '10.0.0.0/8,fd00::/8', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/08', 'x'],
  'include-outbound-cidrs': ['', '*', ' * ', '*,10.0.0.0/8', '10.0.0.0/8', ',', 'fd00::1'],
  ipv6: ['auto', 'on', 'off', 'yes'],
  mark: ['0x539', '1337', '0', '0xffffffff', '0x100000000', ' 0x10 ', '0X10', '0x'],
  'route-table': ['133', '253', '0x85', '4294967295'],
  'proxy-mark': ['0', '0x539', '0x53f', '42'],
  'iptables-backend': ['auto', 'nft', 'legacy', 'xt'],
  'pod-uid': ['u1', ''],
  cgroup: ['/sys/fs/cgroup/x', ''],
  'cgroup-root': ['/host/sys/fs/cgroup'],
  bpffs: ['/host/sys/fs/bpf', ''],
};
const BOOL_ENV = ['1', 'true', 'YES', '0', 'no', 'maybe', ''];
const env = (flag: string) => `WEFT_${flag.toUpperCase().replaceAll('-', '_')}`;

t.test('each flag and env var alone: same config, or the schema decides', async (t) => {
  let taken = 0;
  for (const [flag, vals] of Object.entries(VALUES)) {
    for (const v of vals) {
      if (agree(t, [`--${flag}`, v])) taken++;
      if (agree(t, [`--${flag}=${v}`])) taken++;
      if (agree(t, [], { [env(flag)]: v })) taken++;
    }
  }
  for (const b of ['dry-run', 'cleanup']) {
    agree(t, [`--${b}`]);
    for (const v of BOOL_ENV) agree(t, [], { [env(b)]: v });
  }
  t.ok(taken > 100, `the fast path took ${taken} of the single-flag cases`);
  t.equal(fastInitConfig(['--help'], {}), null, '--help is the schema’s');
  t.equal(fastInitConfig(['--nope'], {}), null, 'an unknown flag is the schema’s to report');
  t.equal(fastInitConfig(['--mark', '5', '--proxy-mark', '5'], {}), null, 'cross-field checks are the schema’s');
});

t.test('random combinations of flags, env and repeats', async (t) => {
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const flags = Object.keys(VALUES);
  let taken = 0;
  for (let i = 0; i < 400; i++) {
    const argv: string[] = [];
    const e: NodeJS.ProcessEnv = {};
    for (let k = rnd(6); k > 0; k--) {
      const f = flags[rnd(flags.length)]!;
      const vals = VALUES[f]!;
      const v = vals[rnd(vals.length)]!;
      if (rnd(3) === 0) e[env(f)] = v;
      else argv.push(`--${f}`, v);
    }
    if (rnd(4) === 0) argv.push('--dry-run');
    if (agree(t, argv, e)) taken++;
  }
  t.ok(taken > 40, `the fast path took ${taken} of 400 combinations`);
});
