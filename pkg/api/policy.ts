// AuthorizationPolicy (policy.weft.dev/v1alpha1): the zod schema is the single source of
// truth. The webhook, `weft policy check`, the file source and the CRD's openAPIV3Schema
// (policyCrd(), written to YAML by `npm run gen`) all come from here.
import { z } from 'zod';
import { ErrorCodes, WeftError } from '../errors/index.js';
import { parseCidr } from '../policy/cidr.js';

export const POLICY_GROUP = 'policy.weft.dev';
export const POLICY_VERSION = 'v1alpha1';
export const POLICY_API_VERSION = `${POLICY_GROUP}/${POLICY_VERSION}`;
export const POLICY_KIND = 'AuthorizationPolicy';
export const POLICY_PLURAL = 'authorizationpolicies';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** `*` alone, or at most one `*` at the start or the end: exact, `prefix*`, `*suffix`. */
export function isPattern(s: string): boolean {
  if (s === '*') return true;
  const stars = s.split('*').length - 1;
  if (stars === 0) return true;
  return stars === 1 && (s.startsWith('*') || s.endsWith('*'));
}

const PATTERN_MSG = 'must be exact, "prefix*", "*suffix" or "*" (one "*", only at the start or end)';
const nonEmpty = (what: string) => z.string({ error: `must be a string (${what})` }).min(1, `must not be empty (${what})`);

const namespacePattern = nonEmpty('a namespace name or pattern').refine(isPattern, PATTERN_MSG);
const serviceAccountPattern = nonEmpty('"namespace/name" or a bare name in the policy\'s namespace')
  .refine((s) => s.split('/').length <= 2 && s.split('/').every((p) => p.length > 0 && isPattern(p)), `must be "namespace/name" or "name", each part ${PATTERN_MSG}`);
const cidr = nonEmpty('an IPv4/IPv6 address or CIDR').refine((s) => parseCidr(s) !== undefined, 'must be an IPv4 or IPv6 address or CIDR such as 10.0.0.0/8 or fd00::/8, with a prefix length in range');
const port = z.number({ error: 'must be a port number 1-65535' }).int('must be an integer port 1-65535').min(1, 'must be a port number 1-65535').max(65535, 'must be a port number 1-65535');
const method = nonEmpty('an HTTP method').regex(/^([A-Z]+|\*)$/, 'must be an upper-case HTTP method such as GET, or "*"');
const path = nonEmpty('a path').refine((s) => s === '*' || ((s.startsWith('/') || s.startsWith('*')) && isPattern(s)), `must start with "/" or "*" and ${PATTERN_MSG}`);

const array = <T extends z.ZodType>(item: T, help: string) => z.array(item, { error: `must be a list (${help})` });
// An empty list would match nothing, silently turning a DENY into a no-op: refused, so the
// author either lists something or leaves the field out (which matches anything).
const list = <T extends z.ZodType>(item: T, help: string) =>
  array(item, help)
    .min(1, `must not be empty (an empty list matches nothing); list at least one, or leave the field out to match any (${help})`)
    .optional();

export const SourceSchema = z
  .object({
    namespaces: list(namespacePattern, 'peer namespaces'),
    serviceAccounts: list(serviceAccountPattern, 'peer service accounts, "namespace/name"'),
    ipBlocks: list(cidr, 'peer CIDRs'),
    notNamespaces: list(namespacePattern, 'peer namespaces'),
    notServiceAccounts: list(serviceAccountPattern, 'peer service accounts'),
    notIpBlocks: list(cidr, 'peer CIDRs'),
  })
  .strict();

export const OperationSchema = z
  .object({
    ports: list(port, 'destination ports'),
    methods: list(method, 'HTTP methods; HTTP only'),
    paths: list(path, 'HTTP paths; HTTP only'),
    notPorts: list(port, 'destination ports'),
    notMethods: list(method, 'HTTP methods; HTTP only'),
    notPaths: list(path, 'HTTP paths; HTTP only'),
  })
  .strict();

export const RuleSchema = z
  .object({
    from: list(z.object({ source: SourceSchema }).strict(), '{source: …} entries'),
    to: list(z.object({ operation: OperationSchema }).strict(), '{operation: …} entries'),
  })
  .strict();

export const PolicySpecSchema = z
  .object({
    selector: z
      .object({ matchLabels: z.record(z.string(), z.string({ error: 'label values must be strings' })).optional() })
      .strict()
      .optional(),
    action: z.enum(['ALLOW', 'DENY'], { error: 'must be ALLOW or DENY' }).default('ALLOW'),
    // `rules: []` is Istio's allow-nothing idiom (ALLOW) / deny-nothing (DENY): kept.
    rules: array(RuleSchema, 'rules; an ALLOW policy without rules allows nothing').optional(),
  })
  .strict();

const ConditionSchema = z.object({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string().optional(),
  message: z.string().optional(),
  observedGeneration: z.number().int().optional(),
  lastTransitionTime: z.string().optional(),
});
export const PolicyStatusSchema = z.object({ conditions: z.array(ConditionSchema).optional() });

export const PolicyMetadataSchema = z
  .object({
    name: nonEmpty('the policy name').max(253, 'must be at most 253 characters').regex(DNS_SUBDOMAIN, 'must be a DNS subdomain (lower-case letters, digits, "-", ".")'),
    namespace: nonEmpty('a namespace').max(63, 'must be at most 63 characters').regex(DNS_LABEL, 'must be a DNS label').optional(),
  })
  .loose();

export const PolicyDocumentSchema = z
  .object({
    apiVersion: z.literal(POLICY_API_VERSION, { error: `must be "${POLICY_API_VERSION}"` }),
    kind: z.literal(POLICY_KIND, { error: `must be "${POLICY_KIND}"` }),
    metadata: PolicyMetadataSchema,
    spec: PolicySpecSchema,
    status: PolicyStatusSchema.optional(),
  })
  .loose();

export type PolicySpec = z.output<typeof PolicySpecSchema>;
export type PolicyRule = z.output<typeof RuleSchema>;
export type PolicySource = z.output<typeof SourceSchema>;
export type PolicyOperation = z.output<typeof OperationSchema>;
export type PolicyCondition = z.output<typeof ConditionSchema>;

/** A validated policy, namespace filled in. */
export interface Policy {
  namespace: string;
  name: string;
  spec: PolicySpec;
  generation?: number;
}

/** `spec.rules[0].to[1].operation.paths[2]`: the path the way kubectl users write it. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(root)';
}

/** Validate one parsed document; throws WEFT_ERR_BAD_POLICY naming every bad field. */
export function parsePolicy(doc: unknown, defaultNamespace = 'default', where = ''): Policy {
  const r = PolicyDocumentSchema.safeParse(doc);
  const label = where || describeDoc(doc, defaultNamespace);
  if (!r.success) {
    const msgs = r.error.issues.map((i) => `${fieldPath(i.path)}: ${i.message}`);
    throw new WeftError(ErrorCodes.BAD_POLICY, `${label}: ${msgs.join('; ')}`, { field: fieldPath(r.error.issues[0]?.path ?? []) });
  }
  const d = r.data;
  const meta = d.metadata as { name: string; namespace?: string; generation?: unknown };
  const p: Policy = { namespace: meta.namespace ?? defaultNamespace, name: meta.name, spec: d.spec };
  if (typeof meta.generation === 'number') p.generation = meta.generation;
  return p;
}

function describeDoc(doc: unknown, defaultNamespace: string): string {
  const m = (doc as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
  const name = typeof m?.name === 'string' ? m.name : '(unnamed)';
  return `AuthorizationPolicy ${typeof m?.namespace === 'string' ? m.namespace : defaultNamespace}/${name}`;
}

type Json = Record<string, unknown>;

/** zod's JSON Schema → a Kubernetes structural schema: every node typed, no `$schema`,
 * no `additionalProperties: false` (the API server prunes unknown fields instead), records
 * as `additionalProperties: {type: string}`. */
export function toStructural(node: unknown): Json {
  const n = { ...(node as Json) };
  delete n.$schema;
  delete n.propertyNames;
  if (n.additionalProperties === false) delete n.additionalProperties;
  if (n.properties) n.properties = Object.fromEntries(Object.entries(n.properties as Json).map(([k, v]) => [k, toStructural(v)]));
  if (n.items) n.items = toStructural(n.items);
  if (n.additionalProperties && typeof n.additionalProperties === 'object') n.additionalProperties = toStructural(n.additionalProperties);
  if (n.type === undefined && n.enum) n.type = 'string';
  if ('const' in n) {
    n.enum = [n.const];
    delete n.const;
  }
  return n;
}

/** Mark every object node with `properties` x-kubernetes-preserve-unknown-fields. The API
 * server prunes unknown fields before admission, so without this a typo such as
 * `source: {namespace: [web]}` reaches the webhook as `source: {}` (an ALLOW for everyone)
 * from any client that does not ask for strict field validation. Kept, the strict zod schema
 * in POST /validate (and the controller, if the webhook was bypassed) refuses it by name.
 * The flag does not carry into nested schemas, hence every level. */
export function preserveUnknownFields(node: Json): Json {
  const n = { ...node };
  if (n.properties) {
    n['x-kubernetes-preserve-unknown-fields'] = true;
    n.properties = Object.fromEntries(Object.entries(n.properties as Json).map(([k, v]) => [k, preserveUnknownFields(v as Json)]));
  }
  if (n.items) n.items = preserveUnknownFields(n.items as Json);
  return n;
}

/** The CustomResourceDefinition object for authorizationpolicies.policy.weft.dev. */
export function policyCrd(): Json {
  const spec = preserveUnknownFields(toStructural(z.toJSONSchema(PolicySpecSchema, { io: 'input', unrepresentable: 'any' })));
  const status = toStructural(z.toJSONSchema(PolicyStatusSchema, { io: 'input', unrepresentable: 'any' }));
  spec.description = 'Which peers may reach the selected pods and how (Istio AuthorizationPolicy semantics). See docs/policy.md.';
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${POLICY_PLURAL}.${POLICY_GROUP}` },
    spec: {
      group: POLICY_GROUP,
      scope: 'Namespaced',
      names: { plural: POLICY_PLURAL, singular: 'authorizationpolicy', kind: POLICY_KIND, listKind: `${POLICY_KIND}List`, shortNames: ['wap'] },
      versions: [
        {
          name: POLICY_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Action', type: 'string', jsonPath: '.spec.action' },
            { name: 'Accepted', type: 'string', jsonPath: '.status.conditions[?(@.type=="Accepted")].status' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              required: ['spec'],
              properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, spec, status },
            },
          },
        },
      ],
    },
  };
}
