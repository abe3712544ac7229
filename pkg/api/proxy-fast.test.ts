// The proxy's zod-free fast path must give exactly what the zod schema gives, or step aside
// (null). Checked on the injector's real proxy containers (every golden pod), every flag's
// plain and odd spellings, env vars, the two JSON flags, and random combinations.
import { readdirSync, readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { parseProxyConfig } from './proxy-config.js';
import { fastProxyConfig } from './proxy-fast.js';

type Outcome = { ok: true; value: unknown } | { ok: false; error: string };

function viaSchema(argv: string[], env: NodeJS.ProcessEnv): Outcome {
  try {
    return { ok: true, value: parseProxyConfig(argv, env) };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

/** Same keys, same values, same types (Sets as sorted arrays): what the proxy receives. */
const canonical = (v: unknown): string =>
  JSON.stringify(v, (_, x: unknown) => (x instanceof Set ? [...(x as Set<number>)].sort() : x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));

function agree(t: Test, argv: string[], env: NodeJS.ProcessEnv = {}): boolean {
  const fast = fastProxyConfig(argv, env);
  if (fast === null) return false;
  const schema = viaSchema(argv, env);
  const what = `${argv.join(' ')} ${JSON.stringify(env)}`.slice(0, 300);
  if (!schema.ok) {
    t.fail(`${what}: the fast path accepted what the schema refuses: ${schema.error}`);
    return true;
  }
  if (canonical(fast) !== canonical(schema.value)) t.fail(`${what}: fast ${canonical(fast)} != schema ${canonical(schema.value)}`);
  if (!Object.isFrozen(fast) || !Object.isFrozen(fast.podLabels) || !Object.isFrozen(fast.pod)) t.fail(`${what}: not frozen`);
  return true;
}

interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
}

/** Every weft-proxy container the golden files hold, as (argv, env) a kubelet would run. */
function injectedProxies(): { file: string; argv: string[]; env: NodeJS.ProcessEnv }[] {
  const dir = new URL('../inject/testdata/golden/', import.meta.url);
  const src = new URL('../../../pkg/inject/testdata/golden/', import.meta.url);
  let files: string[];
  let base: URL;
  try {
    files = readdirSync(src);
    base = src;
  } catch {
    files = readdirSync(dir);
    base = dir;
  }
  const out: { file: string; argv: string[]; env: NodeJS.ProcessEnv }[] = [];
  const visit = (file: string, node: unknown): void => {
    if (Array.isArray(node)) return node.forEach((n) => visit(file, n));
    if (!node || typeof node !== 'object') return;
    const c = node as Container;
    if (c.name === 'weft-proxy' && Array.isArray(c.args)) {
      const env: NodeJS.ProcessEnv = {};
      // Downward-API values as the kubelet fills them in.
      for (const e of c.env ?? []) env[e.name] = e.value ?? (e.name === 'WEFT_POD_IPS' ? '10.0.0.7,fd00::7' : e.name === 'WEFT_POD_IP' ? '10.0.0.7' : `from-${e.name.toLowerCase()}`);
      out.push({ file, argv: c.args.slice(1), env });
    }
    for (const v of Object.values(node)) visit(file, v);
  };
  for (const f of files.filter((x) => x.endsWith('.yaml'))) {
    for (const doc of readFileSync(new URL(f, base), 'utf8').split(/^---$/m)) visit(f, parse(doc, { version: '1.1' }));
  }
  return out;
}

t.test('every proxy the injector writes takes the fast path and gets the schema’s config', async (t) => {
  const proxies = injectedProxies();
  t.ok(proxies.length >= 10, `${proxies.length} injected proxy containers in the golden files`);
  for (const p of proxies) t.ok(agree(t, p.argv, p.env), `${p.file}: fast path taken (${p.argv.join(' ').slice(0, 120)}…)`);
  t.ok(agree(t, []), 'no flags at all');
});

const PROBES = [
  '{}',
  '{"app/readyz":{"httpGet":{"port":8080,"path":"/ready","scheme":"HTTP","httpHeaders":[{"name":"X-A","value":"b"}]},"timeoutSeconds":3}}',
  '{"app/livez":{"tcpSocket":{"port":5432}},"side/startupz":{"grpc":{"port":9090}}}',
  '{"app/livez":{"httpGet":{"port":8080}}}',
  '{"app/livez":{"httpGet":{"port":8080,"path":"nope"}}}',
  '{"app/livez":{"httpGet":{"port":8080,"bogus":1}}}',
  '{"app/livez":{"httpGet":{"port":8080},"tcpSocket":{"port":1}}}',
  '{"App/livez":{"tcpSocket":{"port":1}}}',
  '{"app/livez":{"tcpSocket":{"port":70000}}}',
  '{"app/livez":{"tcpSocket":{"port":1},"timeoutSeconds":0}}',
  '{"app/livez":{"httpGet":{"port":1,"httpHeaders":[{"name":"","value":"x"}]}}}',
  '[]',
  'not json',
];
const LABELS = ['{}', '{"app":"web","tier":"front"}', '{"app":1}', '{"":"x"}', '[]', '"x"', '{'];

const VALUES: Record<string, string[]> = {
  mode: ['tproxy', 'ebpf', 'none', 'TPROXY', ''],
  'inbound-port': ['15006', '1', '65535', '0', '65536', '80.5', ' 80', '0x50'],
  'outbound-port': ['15001', '15006', '8080'],
  'admin-port': ['15020', '15001', '9'],
  'proxy-mark': ['0', '1337', '4294967294', '4294967295', '-1', '1e3'],
  'connect-timeout-ms': ['5000', '1', '0', '2.5', 'soon'],
  'idle-timeout-ms': ['0', '3600000', '-5'],
  'detect-timeout-ms': ['100', '0', '1e2'],
  'drain-grace-ms': ['20000', '0', 'x'],
  'opaque-ports': ['', '5432', '25, 587 ,25', '1,65535', '0', '22,,23', 'a', ',,'],
  'default-inbound-policy': ['allow', 'deny', 'DENY', ''],
  'policy-file': ['/etc/weft/p.yaml', ''],
  controller: ['https://weft-controller.weft-system.svc:443', 'http://127.0.0.1:9443/x', 'ftp://x', 'https://', 'https://user:pw@h/', 'not a url'],
  'controller-ca': ['/etc/ca.pem', ''],
  'controller-ca-pem': ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', 'nope'],
  'token-file': ['/var/run/t', ''],
  'log-level': ['info', 'debug', 'silent', 'loud'],
  relay: ['native', 'js', 'splice'],
  'app-probes': PROBES,
  'pod-labels': LABELS,
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
  agree(t, ['--access-log']);
  for (const v of BOOL_ENV) agree(t, [], { WEFT_ACCESS_LOG: v });
  t.ok(taken > 120, `the fast path took ${taken} of the single-flag cases`);
  t.equal(fastProxyConfig(['--help'], {}), null, '--help is the schema’s');
  t.equal(fastProxyConfig(['--nope'], {}), null, 'an unknown flag is the schema’s to report');
  t.equal(fastProxyConfig(['--admin-port', '15006'], {}), null, 'cross-field checks are the schema’s');
  t.equal(fastProxyConfig(['--controller-ca', '/x'], {}), null, 'a CA without an https controller is the schema’s to refuse');
});

t.test('random combinations of flags, env and repeats', async (t) => {
  let seed = 11;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const flags = Object.keys(VALUES);
  let taken = 0;
  for (let i = 0; i < 500; i++) {
    const argv: string[] = [];
    const e: NodeJS.ProcessEnv = {};
    for (let k = rnd(7); k > 0; k--) {
      const f = flags[rnd(flags.length)]!;
      const vals = VALUES[f]!;
      const v = vals[rnd(vals.length)]!;
      if (rnd(3) === 0) e[env(f)] = v;
      else argv.push(`--${f}`, v);
    }
    if (rnd(4) === 0) argv.push('--access-log');
    if (rnd(3) === 0) Object.assign(e, { WEFT_POD_NAME: 'web-0', WEFT_POD_NAMESPACE: 'shop', WEFT_POD_IPS: '10.0.0.7, fd00::7', WEFT_SERVICE_ACCOUNT: 'web' });
    if (agree(t, argv, e)) taken++;
  }
  t.ok(taken > 60, `the fast path took ${taken} of 500 combinations`);
});
