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
