// Validates rendered Kubernetes objects against the Kubernetes API's own schemas, for every
// minor the chart supports (1.29-1.33), with ajv. Two pinned devDependencies supply them:
//
// - cdk8s-plus-29 ... cdk8s-plus-33 (the CNCF cdk8s project) each ship, in their jsii
//   manifest (.jsii), every type of one Kubernetes release's OpenAPI spec (1.XX.0): each
//   property with its original JSON name (docs.custom.schema "io.k8s...Deployment#spec"), its
//   type and whether it is required. That is the field set of that exact minor, turned here
//   into closed JSON Schemas (additionalProperties: false, as `kubeconform -strict` and the
//   API server's strict field validation): an unknown or misspelt field, a wrong type or a
//   missing required field fails. jsii keeps no enums or integer/float distinction.
// - kubernetes-models@4.5.1 embeds the Kubernetes 1.33.0 spec as compiled validators that do
//   check enums and formats (not unknown fields): the same objects go through it too.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { repoRoot } from './helm.js';

/** The minors the chart claims (Chart.yaml kubeVersion >= 1.29) up to the newest checked. */
export const KUBE_MINORS = [29, 30, 31, 32, 33] as const;
export type KubeMinor = (typeof KUBE_MINORS)[number];

interface JsiiType {
  kind: 'interface' | 'class' | 'enum';
  name: string;
  namespace?: string;
  docs?: { custom?: { schema?: string } };
  properties?: { name: string; optional?: boolean; static?: boolean; type: JsiiRef; docs?: { custom?: { schema?: string } } }[];
}
type JsiiRef = { primitive: string } | { fqn: string } | { collection: { kind: 'array' | 'map'; elementtype: JsiiRef } } | { union: { types: JsiiRef[] } };
type Schema = Record<string, unknown>;

/** Kubernetes' two scalar wrapper types, which jsii models as classes. */
const SCALARS: Record<string, Schema> = {
  'io.k8s.apimachinery.pkg.util.intstr.IntOrString': { type: ['integer', 'string'] },
  'io.k8s.apimachinery.pkg.api.resource.Quantity': { type: ['string', 'number'] },
};

function refSchema(ref: JsiiRef, types: Record<string, JsiiType>): Schema {
  if ('primitive' in ref) {
    // date: RFC 3339 text on the wire; any/json: whatever JSON (CRD defaults, raw extensions).
    return { string: { type: 'string' }, date: { type: 'string' }, number: { type: 'number' }, boolean: { type: 'boolean' } }[ref.primitive] ?? {};
  }
  if ('fqn' in ref) {
    const t = types[ref.fqn];
    if (!t) return {};
    if (t.kind === 'enum') return { type: 'string' };
    const scalar = SCALARS[t.docs?.custom?.schema ?? ''];
    return scalar ?? { $ref: `#/definitions/${ref.fqn}` };
  }
  if ('collection' in ref) {
    const items = refSchema(ref.collection.elementtype, types);
    return ref.collection.kind === 'array' ? { type: 'array', items } : { type: 'object', additionalProperties: items };
  }
  return { anyOf: ref.union.types.map((r) => refSchema(r, types)) };
}

/** One interface as a closed JSON Schema, with the property names of the API (not jsii's). */
function objectSchema(t: JsiiType, types: Record<string, JsiiType>, resource: boolean): Schema {
  const properties: Record<string, Schema> = {};
  const required: string[] = [];
  for (const p of t.properties ?? []) {
    if (p.static) continue;
    const name = p.docs?.custom?.schema?.split('#')[1] ?? p.name;
    properties[name] = refSchema(p.type, types);
    if (!p.optional) required.push(name);
  }
  // A resource's props leave apiVersion and kind to the construct; objects carry them.
  if (resource) Object.assign(properties, { apiVersion: { type: 'string' }, kind: { type: 'string' } });
  return { type: 'object', properties, ...(required.length ? { required } : {}), additionalProperties: false };
}

export interface KubeValidator {
  minor: KubeMinor;
  /** Error messages (empty: valid), or undefined when this release has no such kind (a custom resource). */
  validate(obj: { apiVersion: string; kind: string }): string[] | undefined;
}

const cache = new Map<KubeMinor, KubeValidator>();

/** The strict validator of Kubernetes 1.<minor>.0, from cdk8s-plus-<minor>'s manifest. */
export function kubeValidator(minor: KubeMinor): KubeValidator {
  const hit = cache.get(minor);
  if (hit) return hit;
  const pkg = `cdk8s-plus-${minor}`;
  const manifest = JSON.parse(readFileSync(join(repoRoot, 'node_modules', pkg, '.jsii'), 'utf8')) as { types: Record<string, JsiiType> };
  const types = manifest.types;
  const definitions: Record<string, Schema> = {};
  const roots = new Map<string, string>(); // "<group segment>.<version>.<Kind>" -> fqn
  for (const [fqn, t] of Object.entries(types)) {
    if (t.namespace !== 'k8s' || t.kind !== 'interface') continue;
    const resource = /^Kube\w+Props$/.test(t.name);
    definitions[fqn] = objectSchema(t, types, resource);
    const def = t.docs?.custom?.schema;
    // io.k8s.api.apps.v1.Deployment, io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition
    const m = def && resource ? /\.([a-z0-9-]+)\.(v\d+(?:(?:alpha|beta)\d+)?)\.(\w+)$/.exec(def) : null;
    if (m) roots.set(`${m[1]}.${m[2]}.${m[3]}`, fqn);
  }
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addSchema({ $id: 'k8s', definitions });
  const compiled = new Map<string, ValidateFunction>();
  const v: KubeValidator = {
    minor,
    validate(obj) {
      const slash = obj.apiVersion.indexOf('/');
      const group = slash < 0 ? '' : obj.apiVersion.slice(0, slash);
      const version = slash < 0 ? obj.apiVersion : obj.apiVersion.slice(slash + 1);
      // The definition names the group by its first label (apps, rbac, apiextensions…); only
      // Kubernetes' own groups (no dot, or *.k8s.io) can be meant: policy.weft.dev is not policy.
      const segment = group === '' ? 'core' : (group.split('.')[0] ?? '');
      if (group.includes('.') && !group.endsWith('.k8s.io')) return undefined;
      const fqn = roots.get(`${segment}.${version}.${obj.kind}`);
      if (!fqn) return undefined;
      let fn = compiled.get(fqn);
      if (!fn) {
        fn = ajv.compile({ $ref: `k8s#/definitions/${fqn}` });
        compiled.set(fqn, fn);
      }
      return fn(withoutNulls(obj)) ? [] : (fn.errors ?? []).map(describe);
    },
  };
  cache.set(minor, v);
  return v;
}

/** The API server treats an explicit null as an unset optional field. */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, withoutNulls(x)]));
}

function describe(e: ErrorObject): string {
  const extra = e.keyword === 'additionalProperties' ? `: ${String((e.params as { additionalProperty?: string }).additionalProperty)}` : '';
  return `${e.instancePath || '(root)'} ${e.message ?? e.keyword}${extra}`;
}

interface Model {
  validate(): void;
}

/** kubernetes-models@4.5.1 (Kubernetes 1.33.0): the upstream validator, with enums and
 * formats. Undefined when it has no model for the kind. */
export async function modelsValidate(obj: { apiVersion: string; kind: string }): Promise<string[] | undefined> {
  let mod: Record<string, new (data: unknown) => Model>;
  try {
    mod = (await import(`kubernetes-models/${obj.apiVersion}/${obj.kind}`)) as typeof mod;
  } catch {
    return undefined;
  }
  const Cls = mod[obj.kind];
  if (!Cls) return undefined;
  try {
    new Cls(obj).validate();
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}
