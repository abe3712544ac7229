// The rendered MutatingWebhookConfiguration's namespaceSelector/objectSelector, evaluated as
// data the way the API server does, must send the webhook exactly the pods pkg/inject's
// opt-in logic injects (for label opt-in/out), and never the same pod twice.
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import type { Pod } from '../pkg/api/k8s-types.js';
import { defaultValues } from '../pkg/api/values.js';
import { decideSkip } from '../pkg/inject/index.js';
import { helmPath, renderChart } from './helm.js';

interface Requirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}
interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Requirement[];
}
interface Webhook {
  name: string;
  namespaceSelector?: LabelSelector;
  objectSelector?: LabelSelector;
}

/** Kubernetes label-selector semantics (apimachinery labels.Selector); an absent selector
 * matches everything. */
export function matches(sel: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!sel) return true;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const r of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, r.key);
    const val = labels[r.key];
    const inValues = has && (r.values ?? []).includes(val as string);
    const ok = r.operator === 'In' ? inValues : r.operator === 'NotIn' ? !inValues : r.operator === 'Exists' ? has : !has;
    if (!ok) return false;
  }
  return true;
}

const RELEASE_NS = 'weft-system';
const LABEL = 'weft.dev/inject';

function webhooks(): Webhook[] {
  const objs = parseAllDocuments(renderChart({ namespace: RELEASE_NS })).map((d) => d.toJS() as { kind?: string; webhooks?: Webhook[] } | null);
  return objs.find((o) => o?.kind === 'MutatingWebhookConfiguration')?.webhooks ?? [];
}

let helmMissing: string | undefined;
try {
  helmPath();
} catch (e) {
  helmMissing = (e as Error).message;
}

t.test('webhook selectors decide like pkg/inject for labelled and unlabelled namespaces and pods', { skip: helmMissing ?? false }, async (t) => {
  const hooks = webhooks();
  t.equal(hooks.length, 2);
  const config = { values: defaultValues(), version: '0.1.0', controllerNamespace: RELEASE_NS };
  const nsLabelChoices: (string | undefined)[] = [undefined, 'enabled', 'disabled'];
  const podLabelChoices: (string | undefined)[] = [undefined, 'enabled', 'disabled'];
  const namespaces = ['shop', 'kube-system', 'kube-public', 'kube-node-lease', RELEASE_NS];
  let cases = 0;
  for (const nsName of namespaces) {
    for (const nsChoice of nsLabelChoices) {
      // The API server sets kubernetes.io/metadata.name on every namespace (1.22+).
      const nsLabels: Record<string, string> = { 'kubernetes.io/metadata.name': nsName, ...(nsChoice ? { [LABEL]: nsChoice } : {}) };
      for (const podChoice of podLabelChoices) {
        const podLabels: Record<string, string> = { app: 'web', ...(podChoice ? { [LABEL]: podChoice } : {}) };
        const pod: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: nsName, labels: podLabels }, spec: { containers: [{ name: 'web', image: 'nginx' }] } } as Pod;
        const called = hooks.filter((w) => matches(w.namespaceSelector, nsLabels) && matches(w.objectSelector, podLabels));
        const injects = decideSkip(pod, { name: nsName, labels: nsLabels }, config) === undefined;
        const what = `namespace ${nsName} ${LABEL}=${nsChoice ?? '(none)'}, pod ${LABEL}=${podChoice ?? '(none)'}`;
        t.ok(called.length <= 1, `${what}: at most one webhook entry is called (${called.map((w) => w.name).join(', ')})`);
        t.equal(called.length === 1, injects, `${what}: webhook called = pkg/inject injects (${injects})`);
        cases++;
      }
    }
  }
  t.equal(cases, namespaces.length * 9);
});

t.test('the selector matcher follows Kubernetes semantics', async (t) => {
  t.ok(matches(undefined, {}));
  t.ok(matches({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['x'] }] }, {}), 'NotIn matches a missing label');
  t.notOk(matches({ matchExpressions: [{ key: 'a', operator: 'In', values: ['x'] }] }, {}), 'In needs the label');
  t.ok(matches({ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, { a: '' }));
  t.notOk(matches({ matchLabels: { a: 'x' }, matchExpressions: [{ key: 'b', operator: 'DoesNotExist' }] }, { a: 'x', b: 'y' }));
});
