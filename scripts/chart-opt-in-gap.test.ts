// `weft inject` warns (clusterOptInGap) exactly where a cluster running the rendered chart
// would not inject a pod that offline injection injects: the webhook entries' selectors read
// labels only, so a pod annotation cannot bring a pod to the webhook. For every namespace
// label, pod label and pod annotation, with the default and a custom opt-in label.
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import type { Pod } from '../pkg/api/k8s-types.js';
import { defaultValues } from '../pkg/api/values.js';
import { clusterOptInGap, decideSkip } from '../pkg/inject/index.js';
import { helmPath, renderChart } from './helm.js';

interface Requirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}
interface Entry {
  namespaceSelector?: { matchExpressions?: Requirement[] };
  objectSelector?: { matchExpressions?: Requirement[] };
}

/** matchExpressions as the API server evaluates them (all must hold). */
const holds = (reqs: Requirement[] | undefined, labels: Record<string, string>) =>
  (reqs ?? []).every((r) => {
    const has = Object.hasOwn(labels, r.key);
    const isIn = has && (r.values ?? []).includes(labels[r.key] as string);
    return r.operator === 'In' ? isIn : r.operator === 'NotIn' ? !isIn : r.operator === 'Exists' ? has : !has;
  });

let helmMissing: string | undefined;
try {
  helmPath();
} catch (e) {
  helmMissing = (e as Error).message;
}

for (const label of ['weft.dev/inject', 'mesh.example.com/inject']) {
  t.test(`opt-in label ${label}: a warning iff weft inject injects and the cluster would not`, { skip: helmMissing ?? false }, async (t) => {
    const set = label === 'weft.dev/inject' ? {} : { 'webhook.namespaceSelectorLabel': label };
    const docs = parseAllDocuments(renderChart({ namespace: 'weft-system', set })).map((d) => d.toJS() as { kind?: string; webhooks?: Entry[] } | null);
    const entries = docs.find((d) => d?.kind === 'MutatingWebhookConfiguration')?.webhooks ?? [];
    t.equal(entries.length, 2);
    const base = defaultValues();
    const config = { values: { ...base, webhook: { ...base.webhook, namespaceSelectorLabel: label } }, version: '0.1.0', controllerNamespace: 'weft-system' };
    const choices: (string | undefined)[] = [undefined, 'enabled', 'disabled'];
    let warnings = 0;
    for (const nsChoice of choices) {
      const nsLabels: Record<string, string> = { 'kubernetes.io/metadata.name': 'shop', ...(nsChoice ? { [label]: nsChoice } : {}) };
      for (const podLabel of choices) {
        for (const annotation of choices) {
          const labels: Record<string, string> = podLabel ? { [label]: podLabel } : {};
          const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', labels, ...(annotation ? { annotations: { 'weft.dev/inject': annotation } } : {}) }, spec: { containers: [{ name: 'web' }] } } as Pod;
          // A cluster: an entry must be called, and the webhook then decides without namespace labels.
          const called = entries.some((e) => holds(e.namespaceSelector?.matchExpressions, nsLabels) && holds(e.objectSelector?.matchExpressions, labels));
          const cluster = called && decideSkip(pod, { name: 'shop' }, config) === undefined;
          const offline = decideSkip(pod, { name: 'shop', labels: nsLabels }, config) === undefined;
          const what = `namespace ${nsChoice ?? '(none)'}, label ${podLabel ?? '(none)'}, annotation ${annotation ?? '(none)'}`;
          t.ok(!cluster || offline, `${what}: whatever a cluster injects, weft inject injects`);
          const gap = clusterOptInGap(pod, { name: 'shop', labels: nsLabels }, label);
          t.equal(gap !== undefined, offline && !cluster, `${what}: warning iff only offline injects`);
          if (gap) warnings++;
        }
      }
    }
    t.equal(warnings, 5, 'annotation enabled: labelled disabled in any of the 3 namespaces, or unlabelled outside an enabled one (2)');
  });
}
