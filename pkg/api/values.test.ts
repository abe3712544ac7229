import t from 'tap';
import { z } from 'zod';
import { defaultValues, parseValuesYaml, ValuesSchema } from './values.js';

t.test('defaults are complete and match the design', async (t) => {
  const v = defaultValues();
  t.equal(v.interception.defaultMode, 'tproxy');
  t.same(v.proxy.ports, { inbound: 15006, outbound: 15001, admin: 15020, tunnel: 15008, health: 15021 });
  t.equal(v.proxy.uid, 1337);
  t.equal(v.proxy.nativeSidecar, true);
  t.equal(v.webhook.reinvocationPolicy, 'IfNeeded');
  t.equal(v.controller.port, 9443);
});

t.test('a typo or a bad value fails, naming the field', async (t) => {
  t.throws(() => parseValuesYaml('proxy:\n  logLevl: debug\n', 'my-values.yaml'), { code: 'WEFT_ERR_BAD_CONFIG', message: /my-values.yaml: proxy: Unrecognized key: "logLevl"/ });
  t.throws(() => parseValuesYaml('proxy:\n  resources:\n    requests: {memory: lots}\n'), { message: /proxy.resources.requests.memory: must be a Kubernetes quantity/ });
  t.throws(() => parseValuesYaml('interception: {defaultMode: ebpff}'), { message: /interception.defaultMode/ });
  t.throws(() => parseValuesYaml('a: [b'), { code: 'WEFT_ERR_BAD_CONFIG', message: /not valid YAML/ });
  t.same(parseValuesYaml('').proxy, defaultValues().proxy, 'an empty file is the defaults');
});

t.test('JSON schema: every object closed, every field described (values.schema.json is generated from it)', async (t) => {
  const schema = z.toJSONSchema(ValuesSchema, { io: 'input' }) as Record<string, unknown>;
  const missing: string[] = [];
  const open: string[] = [];
  const walk = (s: Record<string, unknown>, path: string) => {
    if (s.type === 'object' && s.properties) {
      if (s.additionalProperties !== false) open.push(path || '(root)');
      for (const [k, sub] of Object.entries(s.properties as Record<string, Record<string, unknown>>)) {
        if (!sub.description) missing.push(`${path}${k}`);
        walk(sub, `${path}${k}.`);
      }
    }
  };
  walk(schema, '');
  t.same(missing, [], 'fields without description');
  t.same(open, [], 'objects that allow unknown keys');
});

t.test('CIDRs in values are checked at load, naming the key', async (t) => {
  t.throws(() => parseValuesYaml('init:\n  excludeOutboundCidrs: [10.0.0.0/8, 10.0.0.0/33]\n', 'v.yaml'), {
    code: 'WEFT_ERR_BAD_CONFIG',
    message: /v.yaml: init.excludeOutboundCidrs.1: must be an IPv4\/IPv6 CIDR or address/,
  });
  t.throws(() => parseValuesYaml('init:\n  includeOutboundCidrs: [fd00::/129]\n'), { message: /init.includeOutboundCidrs.0: must be an IPv4\/IPv6 CIDR or address such as 10.0.0.0\/8, 10.1.2.3 or fd00::\/8, or \*/ });
  t.throws(() => parseValuesYaml('init:\n  includeOutboundCidrs: ["*", 10.0.0.0/8]\n'), { message: /init.includeOutboundCidrs: "\*" \(all\) must be the only entry/ });
  t.throws(() => parseValuesYaml('init:\n  excludeOutboundCidrs: ["*"]\n'), { message: /init.excludeOutboundCidrs.0/ }, '"*" only means something for include');
  const ok = parseValuesYaml('init:\n  excludeOutboundCidrs: [10.96.0.0/12, 169.254.169.254, "fd00:10::/64", "::ffff:10.0.0.0/104"]\n  includeOutboundCidrs: ["*"]\n');
  t.same(ok.init.excludeOutboundCidrs, ['10.96.0.0/12', '169.254.169.254', 'fd00:10::/64', '::ffff:10.0.0.0/104']);
});

t.test('the CIDR pattern (also the JSON schema pattern helm checks) agrees with node:net', async (t) => {
  const hex = () => Math.floor(Math.random() * 0x10000).toString(16);
  const v6 = () => {
    const groups = Array.from({ length: 8 }, hex);
    const form = Math.floor(Math.random() * 4);
    if (form === 0) return groups.join(':');
    const cut = Math.floor(Math.random() * 8);
    const len = 1 + Math.floor(Math.random() * (8 - cut));
    if (form === 1) return `${groups.slice(0, cut).join(':')}::${groups.slice(cut + len).join(':')}`;
    if (form === 2) return `${groups.slice(0, 6).join(':')}:${v4()}`;
    return `${groups.slice(0, Math.min(cut, 5)).join(':')}::${v4()}`;
  };
  const octet = () => String([0, 9, 10, 99, 100, 199, 200, 249, 250, 255, 256, 300, '01'][Math.floor(Math.random() * 13)]);
  const v4 = () => Array.from({ length: 4 }, octet).join('.');
  const corpus = ['', '::', '::1', '1::', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '1::2::3', ':1', '1:', 'fe80::1%eth0', 'g::1', '12345::', '1.2.3', '1.2.3.4.5', ' 1.2.3.4', '1.2.3.4 '];
  for (let i = 0; i < 3000; i++) corpus.push(Math.random() < 0.5 ? v4() : v6());
  const { isIPv4, isIPv6 } = await import('node:net');
  const { isCidr } = await import('./values.js');
  let mismatches = 0;
  for (const addr of corpus) {
    for (const prefix of [undefined, 0, 8, 32, 33, 64, 128, 129, '08', 'x']) {
      const s = prefix === undefined ? addr : `${addr}/${prefix}`;
      const max = isIPv4(addr) ? 32 : isIPv6(addr) && !addr.includes('%') ? 128 : -1;
      const expect = max > 0 && (prefix === undefined || (typeof prefix === 'number' && prefix <= max));
      if (isCidr(s) !== expect && mismatches++ < 10) t.fail(`${JSON.stringify(s)}: pattern says ${isCidr(s)}, node:net ${expect}`);
    }
  }
  t.equal(mismatches, 0, `${corpus.length * 10} strings`);
  const schema = JSON.stringify(z.toJSONSchema(ValuesSchema, { io: 'input' }));
  const { CIDR_RE } = await import('./values.js');
  t.ok(schema.includes(JSON.stringify(CIDR_RE.source)), 'values.schema.json carries the pattern');
});
