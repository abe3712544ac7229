import t from 'tap';
import { parsePolicy, policyCrd } from './policy.js';

const base = { apiVersion: 'policy.weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'p', namespace: 'shop' } };

t.test('a valid policy parses, action defaults to ALLOW, namespace defaults', async (t) => {
  const p = parsePolicy({ ...base, metadata: { name: 'p' }, spec: { rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8', 'fd00::/8'] } }] }] } });
  t.equal(p.spec.action, 'ALLOW');
  t.equal(p.namespace, 'default');
});

t.test('errors name the field path the kubectl way', async (t) => {
  const spec = { action: 'ALLOW', rules: [{ to: [{ operation: { paths: ['/ok'] } }, { operation: { paths: ['/a', '/b*', '/x*y'] } }] }] };
  t.throws(() => parsePolicy({ ...base, spec }), { code: 'WEFT_ERR_BAD_POLICY', message: /spec\.rules\[0\]\.to\[1\]\.operation\.paths\[2\]: must start with/ });
  t.throws(() => parsePolicy({ ...base, spec: { action: 'AUDIT' } }), { message: /spec\.action: must be ALLOW or DENY/ });
  t.throws(() => parsePolicy({ ...base, spec: { rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/33'] } }] }] } }), { message: /spec\.rules\[0\]\.from\[0\]\.source\.ipBlocks\[0\]: must be an IPv4 or IPv6/ });
  t.throws(() => parsePolicy({ ...base, spec: { rules: [{ to: [{ operation: { ports: [70000] } }] }] } }), { message: /spec\.rules\[0\]\.to\[0\]\.operation\.ports\[0\]: must be a port number 1-65535/ });
  t.throws(() => parsePolicy({ ...base, spec: { rules: [{ to: [{ operation: { methods: ['get'] } }] }] } }), { message: /methods\[0\]: must be an upper-case HTTP method/ });
  t.throws(() => parsePolicy({ ...base, spec: { rules: [{ form: [] }] } }), { message: /spec\.rules\[0\]: Unrecognized key.*form/ });
  t.throws(() => parsePolicy({ ...base, kind: 'Policy', spec: {} }), { message: /kind: must be "AuthorizationPolicy"/ });
  t.throws(() => parsePolicy({ ...base, spec: { rules: [{ from: [{ source: { serviceAccounts: ['a/b/c'] } }] }] } }), { message: /serviceAccounts\[0\]: must be "namespace\/name"/ });
});

t.test('CRD: structural schema with status subresource and printer columns', async (t) => {
  const crd = policyCrd() as { metadata: { name: string }; spec: { scope: string; versions: Array<Record<string, unknown>> } };
  t.equal(crd.metadata.name, 'authorizationpolicies.policy.weft.dev');
  t.equal(crd.spec.scope, 'Namespaced');
  const v = crd.spec.versions[0] as { name: string; subresources: unknown; additionalPrinterColumns: { name: string }[]; schema: { openAPIV3Schema: unknown } };
  t.equal(v.name, 'v1alpha1');
  t.same(v.subresources, { status: {} });
  t.ok(v.additionalPrinterColumns.some((c) => c.name === 'Action') && v.additionalPrinterColumns.some((c) => c.name === 'Age'));
  // Structural: every schema node has a type, no additionalProperties:false, no $schema.
  const walk = (n: Record<string, unknown>, at: string): void => {
    t.ok(typeof n.type === 'string', `${at} has a type`);
    t.not(n.additionalProperties, false, `${at} no additionalProperties:false`);
    t.notOk('$schema' in n || 'anyOf' in n || 'oneOf' in n, `${at} plain`);
    for (const [k, c] of Object.entries((n.properties as Record<string, Record<string, unknown>>) ?? {})) walk(c, `${at}.${k}`);
    if (n.items) walk(n.items as Record<string, unknown>, `${at}[]`);
  };
  walk(v.schema.openAPIV3Schema as Record<string, unknown>, 'schema');
  const spec = (v.schema.openAPIV3Schema as { properties: { spec: { properties: Record<string, { enum?: string[] }> } } }).properties.spec;
  t.same(spec.properties.action?.enum, ['ALLOW', 'DENY']);
});

t.test('empty lists are refused, naming the field: they would match nothing', async (t) => {
  const cases: [spec: unknown, field: string][] = [
    [{ action: 'DENY', rules: [{ to: [{ operation: { ports: [] } }] }] }, 'spec.rules[0].to[0].operation.ports'],
    [{ action: 'DENY', rules: [{ from: [{ source: { namespaces: [] } }] }] }, 'spec.rules[0].from[0].source.namespaces'],
    [{ rules: [{ from: [{ source: { notIpBlocks: [] } }] }] }, 'spec.rules[0].from[0].source.notIpBlocks'],
    [{ rules: [{ to: [{ operation: { methods: ['GET'], notPaths: [] } }] }] }, 'spec.rules[0].to[0].operation.notPaths'],
    [{ rules: [{ from: [] }] }, 'spec.rules[0].from'],
    [{ rules: [{ to: [] }] }, 'spec.rules[0].to'],
  ];
  for (const [spec, field] of cases) {
    t.throws(() => parsePolicy({ ...base, spec }), { code: 'WEFT_ERR_BAD_POLICY', field, message: new RegExp(`${field.replace(/[[\].]/g, '\\$&')}: must not be empty \\(an empty list matches nothing\\)`) }, field);
  }
  t.equal(parsePolicy({ ...base, spec: { rules: [] } }).spec.rules?.length, 0, 'rules: [] stays valid (allow-nothing)');
  const schema = JSON.stringify(policyCrd());
  t.match(schema, /"ports":\{"minItems":1,"type":"array"/, 'the CRD carries minItems: 1, so the API server refuses them too');
  t.equal((schema.match(/"minItems":1/g) ?? []).length, 14, 'on all 12 source/operation lists and on from and to');
});

t.test('the path error reads as one sentence', async (t) => {
  t.throws(() => parsePolicy({ ...base, spec: { rules: [{ to: [{ operation: { paths: ['x*y'] } }] }] } }), { message: /paths\[0\]: must start with "\/" or "\*" and must be exact, "prefix\*", "\*suffix" or "\*"/ });
});

/** What kube-apiserver does before admission: drop fields the structural schema does not
 * name, except under x-kubernetes-preserve-unknown-fields (which does not carry into nested
 * schemas that have properties of their own). */
function prune(value: unknown, schema: Record<string, unknown> | undefined): unknown {
  if (!schema || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => prune(v, schema.items as Record<string, unknown> | undefined));
  const props = schema.properties as Record<string, Record<string, unknown>> | undefined;
  const extra = schema.additionalProperties as Record<string, unknown> | undefined;
  if (!props && !extra) return schema['x-kubernetes-preserve-unknown-fields'] ? value : {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const sub = props?.[k] ?? extra;
    if (sub) out[k] = prune(v, sub);
    else if (schema['x-kubernetes-preserve-unknown-fields']) out[k] = v;
  }
  return out;
}

t.test('CRD: unknown fields under spec are preserved, so the webhook sees a typo', async (t) => {
  const crd = policyCrd() as { spec: { versions: { schema: { openAPIV3Schema: { properties: Record<string, Record<string, unknown>> } } }[] } };
  const spec = crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec!;
  const objects: string[] = [];
  const walk = (n: Record<string, unknown>, at: string): void => {
    if (n.properties) {
      objects.push(at);
      t.equal(n['x-kubernetes-preserve-unknown-fields'], true, `${at} preserves unknown fields`);
      for (const [k, c] of Object.entries(n.properties as Record<string, Record<string, unknown>>)) walk(c, `${at}.${k}`);
    }
    if (n.items) walk(n.items as Record<string, unknown>, `${at}[]`);
  };
  walk(spec, 'spec');
  t.same(objects, ['spec', 'spec.selector', 'spec.rules[]', 'spec.rules[].from[]', 'spec.rules[].from[].source', 'spec.rules[].to[]', 'spec.rules[].to[].operation'], 'every object level');
  t.notOk('x-kubernetes-preserve-unknown-fields' in crd.spec.versions[0]!.schema.openAPIV3Schema.properties.status!, 'status is still pruned (the controller writes it)');

  const typo = { rules: [{ from: [{ source: { namespace: ['web'] } }] }] };
  const stored = prune(typo, spec);
  t.same(stored, typo, 'the typo survives to admission');
  t.throws(() => parsePolicy({ ...base, spec: stored }), { field: 'spec.rules[0].from[0].source', message: /Unrecognized key.*"namespace"/ }, 'and the webhook schema refuses it');
  const withoutFlag = JSON.parse(JSON.stringify(spec).replaceAll('"x-kubernetes-preserve-unknown-fields":true', '"x":1')) as Record<string, unknown>;
  t.same(prune(typo, withoutFlag), { rules: [{ from: [{ source: {} }] }] }, '(the audit finding: without the flag it became source: {}, an ALLOW for everyone)');
});
