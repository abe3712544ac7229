// Validates rendered Kubernetes objects against the API's own OpenAPI schemas, as embedded
// in kubernetes-models releases (see scripts/get-kube-models.sh for which release is which
// Kubernetes version and why 1.27 + 1.33 cover our 1.29-1.33 range).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from './helm.js';

/** Alias folder -> Kubernetes version it embeds, and its module file extension. */
export const KUBE_SCHEMAS = [
  { alias: 'k8s-1.27', kube: '1.27.1', ext: 'mjs' },
  { alias: 'k8s-1.33', kube: '1.33.0', ext: 'mjs' },
  { alias: 'k8s-1.36', kube: '1.36.0', ext: 'js' },
] as const;

/** The models folder, fetched by scripts/get-kube-models.sh; a reason string when unavailable. */
export function kubeModelsDir(): { dir: string } | { skip: string } {
  const r = spawnSync('bash', [join(repoRoot, 'scripts', 'get-kube-models.sh')], { encoding: 'utf8' });
  if (r.status !== 0) return { skip: `scripts/get-kube-models.sh failed: ${(r.stderr || r.stdout).trim()}` };
  const dir = r.stdout.trim().split('\n').pop() ?? '';
  return existsSync(join(dir, 'node_modules')) ? { dir } : { skip: `no kubernetes-models under ${dir}` };
}

interface Model {
  validate(): void;
}
type ModelClass = new (data: unknown) => Model;

/** apiVersion + kind -> the model module path inside a kubernetes-models release. */
export function modelPath(apiVersion: string, kind: string): string {
  const slash = apiVersion.indexOf('/');
  const folder = slash < 0 ? apiVersion : `${apiVersion.slice(0, slash)}/${apiVersion.slice(slash + 1)}`;
  return `${folder}/${kind}`;
}

/** Returns the validation error messages (empty: valid), or undefined if this release has no
 * model for the kind (a custom resource). */
export async function validateObject(dir: string, schema: (typeof KUBE_SCHEMAS)[number], obj: { apiVersion: string; kind: string }): Promise<string[] | undefined> {
  const file = join(dir, 'node_modules', schema.alias, `${modelPath(obj.apiVersion, obj.kind)}.${schema.ext}`);
  if (!existsSync(file)) return undefined;
  const mod = (await import(pathToFileURL(file).href)) as Record<string, ModelClass>;
  const Cls = mod[obj.kind];
  if (!Cls) return undefined;
  try {
    new Cls(obj).validate();
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}

/** The OpenAPI schemas of kubernetes-models@4.3.1 (Kubernetes 1.27.1) are shipped as JSON
 * literals; the later releases ship only compiled, non-strict validators. Read the literals,
 * close every object (additionalProperties: false, like `kubeconform -strict` and the API
 * server's strict field validation) and compile with the same ajv, so an unknown or
 * misspelt field fails. 1.27 is below our floor: a field it knows exists in 1.29-1.33. */
export async function strictValidator(dir: string): Promise<(obj: { apiVersion: string; kind: string }) => string[] | undefined> {
  const nm = join(dir, 'node_modules');
  const folders = [join(nm, 'k8s-1.27', '_schemas'), join(nm, '@kubernetes-models', 'apimachinery', '_schemas')];
  const byId = new Map<string, Record<string, unknown>>();
  for (const folder of folders) {
    for (const f of readdirSync(folder).filter((n) => n.endsWith('.mjs'))) {
      const text = readFileSync(join(folder, f), 'utf8');
      const id = /register\("([^"]+)", schema\)/.exec(text)?.[1];
      const start = text.indexOf('const schema = ');
      const end = text.indexOf(';\nexport function addSchema');
      if (!id || start < 0 || end < 0) continue;
      const schema = JSON.parse(text.slice(start + 'const schema = '.length, end)) as Record<string, unknown>;
      byId.set(id, LEFT_OPEN.has(id) ? schema : (closeSchema(schema) as Record<string, unknown>));
    }
  }
  const Ajv = (await import(pathToFileURL(join(nm, 'ajv', 'dist', 'ajv.js')).href)) as { default: new (o: object) => AjvLike };
  const ajv = new Ajv.default({ strict: false, allErrors: true, validateFormats: false });
  for (const [id, s] of byId) ajv.addSchema(s, id);
  const roots = new Map<string, string>();
  for (const [id, s] of byId) {
    const p = s.properties as Record<string, { enum?: string[] }> | undefined;
    const av = p?.apiVersion?.enum?.[0];
    const kind = p?.kind?.enum?.[0];
    if (av && kind) roots.set(`${av} ${kind}`, id);
  }
  return (obj) => {
    const id = roots.get(`${obj.apiVersion} ${obj.kind}`);
    if (!id) return undefined;
    if (ajv.validate(id, obj)) return [];
    return (ajv.errors ?? []).filter((e) => e.keyword !== 'oneOf' && !(e.keyword === 'type' && e.params.type === 'null')).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''}${e.params.additionalProperty ? `: ${String(e.params.additionalProperty)}` : ''}`);
  };
}

/** The package's generator strips every key named "description" from its schemas, which
 * also drops JSONSchemaProps' own `description` field: closing it would reject valid CRDs. */
const LEFT_OPEN = new Set(['io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps']);

interface AjvLike {
  addSchema(s: object, id: string): void;
  validate(id: string, data: unknown): boolean;
  errors?: { instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }[] | null;
}

function closeSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(closeSchema);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([p, s]) => [p, closeSchema(s)])) : closeSchema(v);
  }
  if (out.properties !== undefined && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}
