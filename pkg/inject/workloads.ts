// Offline injection of Kubernetes YAML (`weft inject`): finds the pod templates of Pods,
// workloads, CronJobs and Lists in a multi-document stream, injects them with injectPod and
// leaves every other document as written. Pure: text in, text out.
import { parseAllDocuments, stringify } from 'yaml';
import type { Pod } from '../api/k8s-types.js';
import { parsePod } from '../api/pod-schema.js';
import { ErrorCodes, WeftError } from '../errors/index.js';
import { clusterOptInGap, injectPod, isSkip, type InjectConfig, type NamespaceInfo } from './index.js';
import type { Skip } from './skip.js';

const TEMPLATE_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'ReplicationController', 'Job']);

export interface OfflineOptions {
  config: InjectConfig;
  /** Labels of every namespace (the --namespace-labels simulation); undefined: opted in. */
  namespaceLabels?: Record<string, string> | undefined;
  defaultNamespace?: string;
}

export interface OfflineReport {
  /** `Kind/name` of the pod template and what happened. */
  where: string;
  injected: boolean;
  skip?: Skip;
  /** Injected here, but a cluster would not inject it (clusterOptInGap). */
  warning?: string;
  /** Not injected and not skipped: an object with a pod template of a kind weft does not know. */
  note?: string;
}

const KNOWN_KINDS = `Pod, ${[...TEMPLATE_KINDS].join(', ')}, CronJob, List`;

/** Where an object of an unknown kind keeps a pod template (Argo Rollout, PodTemplate, …). */
function podTemplatePath(obj: Obj): string | undefined {
  if (isObj(obj.spec) && isObj(obj.spec.template) && isObj(obj.spec.template.spec)) return 'spec.template';
  if (isObj(obj.template) && isObj(obj.template.spec)) return 'template';
  return undefined;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function podOf(template: unknown, where: string): Pod {
  const t = parsePod(template, where);
  return { apiVersion: 'v1', kind: 'Pod', metadata: t.metadata ?? {}, spec: t.spec };
}

/** Inject one object in place (returns whether anything changed). */
function injectObject(obj: Obj, opts: OfflineOptions, reports: OfflineReport[], prefix: string): boolean {
  const kind = typeof obj.kind === 'string' ? obj.kind : '';
  const meta = isObj(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? meta.generateName : '(unnamed)';
  const where = kind === 'List' ? `${prefix}List` : `${prefix}${kind}/${name}`;
  const ns: NamespaceInfo = { name: typeof meta.namespace === 'string' ? meta.namespace : (opts.defaultNamespace ?? 'default'), labels: opts.namespaceLabels };
  const spec = isObj(obj.spec) ? obj.spec : undefined;

  const apply = (holder: Obj, key: string, pod: Pod, label: string): boolean => {
    let r;
    try {
      r = injectPod(pod, ns, opts.config);
    } catch (e) {
      if (e instanceof WeftError) throw new WeftError(e.code, `${label}: ${e.message}`, e.field === undefined ? {} : { field: e.field });
      throw e;
    }
    if (isSkip(r)) {
      reports.push({ where: label, injected: false, skip: r });
      return false;
    }
    const warning = clusterOptInGap(pod, ns, opts.config.values.webhook.namespaceSelectorLabel);
    reports.push({ where: label, injected: true, ...(warning === undefined ? {} : { warning }) });
    if (key === '') Object.assign(holder, r.injectedPod);
    else holder[key] = { ...(holder[key] as Obj), metadata: r.injectedPod.metadata, spec: r.injectedPod.spec };
    return true;
  };

  if (kind === 'List') {
    if (!Array.isArray(obj.items)) throw new WeftError(ErrorCodes.BAD_INPUT, `${where}: items must be a list`, { field: `${where}.items` });
    let changed = false;
    obj.items.forEach((item, i) => {
      if (isObj(item)) changed = injectObject(item, opts, reports, `${where}.items[${i}] `) || changed;
    });
    return changed;
  }
  if (kind === 'Pod' && obj.apiVersion === 'v1') return apply(obj, '', podOf(obj, where), where);
  if (TEMPLATE_KINDS.has(kind)) {
    if (!spec) throw new WeftError(ErrorCodes.BAD_INPUT, `${where}: spec is missing`, { field: `${where}.spec` });
    return apply(spec, 'template', podOf(spec.template, `${where} spec.template`), where);
  }
  if (kind === 'CronJob') {
    const jobSpec = spec && isObj(spec.jobTemplate) && isObj(spec.jobTemplate.spec) ? spec.jobTemplate.spec : undefined;
    if (!jobSpec) throw new WeftError(ErrorCodes.BAD_INPUT, `${where}: spec.jobTemplate.spec is missing`, { field: `${where}.spec.jobTemplate` });
    return apply(jobSpec, 'template', podOf(jobSpec.template, `${where} spec.jobTemplate.spec.template`), where);
  }
  const template = podTemplatePath(obj);
  if (template !== undefined) {
    const api = typeof obj.apiVersion === 'string' ? obj.apiVersion : 'no apiVersion';
    reports.push({ where, injected: false, note: `passed through unchanged: it has a pod template (${template}) but weft inject knows only ${KNOWN_KINDS} (this is ${kind || 'no kind'}, ${api}); in a cluster the webhook still injects the pods it creates, if they opt in` });
  }
  return false;
}

/** Multi-document YAML in, multi-document YAML out. Throws (nothing printed) on any bad document or annotation. */
export function injectYaml(text: string, opts: OfflineOptions): { output: string; reports: OfflineReport[] } {
  const docs = parseAllDocuments(text);
  const reports: OfflineReport[] = [];
  const out: string[] = [];
  if (!Array.isArray(docs)) return { output: text, reports };
  docs.forEach((doc, i) => {
    const err = doc.errors[0];
    if (err) throw new WeftError(ErrorCodes.BAD_INPUT, `document ${i + 1}: not valid YAML: ${err.message.split('\n')[0] ?? ''}`, { field: `document ${i + 1}` });
    const js: unknown = doc.toJS();
    if (js === null || js === undefined) return;
    // kubectl reads YAML 1.1, where unquoted yes/no/on/off/y/n are booleans and 0755 is a
    // number: stringify as 1.1 quotes every string such a reader would take for another type.
    if (isObj(js) && injectObject(js, opts, reports, docs.length > 1 ? `document ${i + 1} ` : '')) out.push(stringify(js, { version: '1.1' }));
    else out.push(doc.toString({ directives: false }).replace(/^---\n/, ''));
  });
  return { output: out.map((d) => (d.endsWith('\n') ? d : `${d}\n`)).join('---\n'), reports };
}
