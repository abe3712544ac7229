// The rendered MutatingWebhookConfiguration, as data, in front of the real webhook: for a
// table of labelled and unlabelled namespaces and pods, the entries the API server would
// call (scripts/label-selector.ts) are called over HTTPS — the controller app built from the
// rendered ConfigMap values, serving the rendered Secret's certificate, trusted through the
// rendered caBundle — and the end result must be what pkg/inject decides when it knows the
// namespace's labels. Once with default values, once with a custom
// webhook.namespaceSelectorLabel.
import t from 'tap';
import { request } from 'node:https';
import { parseAllDocuments } from 'yaml';
import type { Pod } from '../pkg/api/k8s-types.js';
import { parseValuesYaml } from '../pkg/api/values.js';
import { injectPod, isSkip, type InjectConfig } from '../pkg/inject/index.js';
import { createLogger } from '../pkg/log/index.js';
import { createInjectorMetrics } from '../pkg/metrics/injector.js';
import { buildControllerApp, type ControllerApp } from '../pkg/webhook/app.js';
import { podReview } from '../pkg/webhook/test-helpers.js';
import { helmPath, renderChart } from './helm.js';
import { selectorMatches, webhookCalled, type MutatingWebhook } from './label-selector.js';

const RELEASE_NS = 'weft-system';
const DEFAULT_LABEL = 'weft.dev/inject';
const VERSION = '0.1.0';

interface Rendered {
  hooks: MutatingWebhook[];
  config: InjectConfig;
  tls: { cert: Buffer; key: Buffer };
}

type Obj = { kind?: string; metadata?: { name?: string }; data?: Record<string, string>; webhooks?: MutatingWebhook[] };

function render(set: Record<string, string>): Rendered {
  const objs = parseAllDocuments(renderChart({ namespace: RELEASE_NS, set })).map((d) => d.toJS() as Obj | null);
  const kind = (k: string) => objs.find((o) => o?.kind === k);
  const secret = kind('Secret')?.data ?? {};
  const b64 = (k: string) => Buffer.from(secret[k] ?? '', 'base64');
  return {
    hooks: kind('MutatingWebhookConfiguration')?.webhooks ?? [],
    // What the controller reads from /etc/weft/values.yaml; its namespace comes from the pod.
    config: { values: parseValuesYaml(kind('ConfigMap')?.data?.['values.yaml'] ?? '', 'rendered ConfigMap'), version: VERSION, controllerNamespace: RELEASE_NS },
    tls: { cert: b64('tls.crt'), key: b64('tls.key') },
  };
}

interface Answer {
  allowed: boolean;
  patched: boolean;
}

/** POST an AdmissionReview the way the API server calls the entry's clientConfig. */
function callWebhook(port: number, hook: MutatingWebhook, body: unknown): Promise<Answer> {
  const svc = hook.clientConfig.service;
  const caBundle = hook.clientConfig.caBundle;
  if (!svc || !caBundle) throw new Error(`${hook.name}: no service clientConfig with a caBundle`);
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: svc.path ?? '/',
        method: 'POST',
        // The API server dials <service>.<namespace>.svc and checks the certificate against caBundle.
        servername: `${svc.name}.${svc.namespace}.svc`,
        ca: Buffer.from(caBundle, 'base64'),
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            const r = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { response: { allowed: boolean; patch?: string } }).response;
            resolve({ allowed: r.allowed, patched: r.patch !== undefined });
          } catch (e) {
            reject(e as Error);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function startController(r: Rendered): Promise<{ app: ControllerApp; port: number }> {
  const app = await buildControllerApp({ tls: r.tls, config: r.config, metrics: createInjectorMetrics(), logger: createLogger('test', 'silent'), recordEvent: () => {} });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, port: (app.server.address() as { port: number }).port };
}

const pod = (ns: string, labels: Record<string, string>, annotations: Record<string, string>): Pod =>
  ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: ns, labels, annotations }, spec: { containers: [{ name: 'web', image: 'nginx' }] } }) as Pod;

let helmMissing: string | undefined;
try {
  helmPath();
} catch (e) {
  helmMissing = (e as Error).message;
}

const RENDERS: [name: string, set: Record<string, string>, label: string][] = [
  ['default values', {}, DEFAULT_LABEL],
  ['webhook.namespaceSelectorLabel=mesh.example.com/inject', { 'webhook.namespaceSelectorLabel': 'mesh.example.com/inject' }, 'mesh.example.com/inject'],
];

for (const [name, set, label] of RENDERS) {
  t.test(`${name}: selectors + webhook decide as pkg/inject does`, { skip: helmMissing ?? false }, async (t) => {
    const r = render(set);
    t.equal(r.hooks.length, 2, 'two entries: namespace opt-in and pod opt-in');
    t.equal(r.config.values.webhook.namespaceSelectorLabel, label, 'the controller reads the same label from its ConfigMap');
    const { app, port } = await startController(r);
    t.teardown(() => app.close());

    const choices: (string | undefined)[] = [undefined, 'enabled', 'disabled'];
    // A custom label makes weft.dev/inject an ordinary label: it must not opt anything out.
    const podLabelSets: Record<string, string>[] = [...choices.map((c) => (c ? { [label]: c } : {})), ...(label === DEFAULT_LABEL ? [] : [{ [DEFAULT_LABEL]: 'disabled' }])];
    const annotationSets: Record<string, string>[] = [{}, { [DEFAULT_LABEL]: 'disabled' }];
    let cases = 0;
    let injected = 0;
    for (const nsName of ['shop', 'kube-system', RELEASE_NS]) {
      for (const nsChoice of choices) {
        // The API server sets kubernetes.io/metadata.name on every namespace (1.22+).
        const nsLabels = { 'kubernetes.io/metadata.name': nsName, ...(nsChoice ? { [label]: nsChoice } : {}) };
        for (const podLabels of podLabelSets) {
          for (const annotations of annotationSets) {
            const p = pod(nsName, { app: 'web', ...podLabels }, annotations);
            const what = `namespace ${nsName} ${JSON.stringify(nsLabels)}, pod labels ${JSON.stringify(podLabels)} annotations ${JSON.stringify(annotations)}`;
            const called = r.hooks.filter((w) => webhookCalled(w, { group: '', version: 'v1', resource: 'pods', operation: 'CREATE', namespaceLabels: nsLabels, objectLabels: p.metadata?.labels ?? {} }));
            t.ok(called.length <= 1, `${what}: at most one entry is called (${called.map((w) => w.name).join(', ')})`);
            let viaWebhook = false;
            for (const w of called) {
              const a = await callWebhook(port, w, podReview(`uid-${cases}`, p as unknown as Record<string, unknown>, nsName));
              t.ok(a.allowed, `${what}: ${w.name} admits the pod`);
              viaWebhook ||= a.patched;
            }
            const decided = !isSkip(injectPod(p, { name: nsName, labels: nsLabels }, r.config));
            t.equal(viaWebhook, decided, `${what}: injected through the webhook = pkg/inject's decision (${decided})`);
            cases++;
            if (decided) injected++;
          }
        }
      }
    }
    t.equal(cases, 3 * 3 * podLabelSets.length * 2);
    t.ok(injected > 0 && injected < cases, `${injected} of ${cases} pods injected: the table has both outcomes`);
  });
}

t.test('annotation-only opt-in in an unlabelled namespace never reaches the webhook (docs/install.md)', { skip: helmMissing ?? false }, async (t) => {
  const r = render({});
  const nsLabels = { 'kubernetes.io/metadata.name': 'shop' };
  const p = pod('shop', { app: 'web' }, { [DEFAULT_LABEL]: 'enabled' });
  t.notOk(r.hooks.some((w) => webhookCalled(w, { group: '', version: 'v1', resource: 'pods', operation: 'CREATE', namespaceLabels: nsLabels, objectLabels: p.metadata?.labels ?? {} })), 'selectors only see labels');
  t.notOk(isSkip(injectPod(p, { name: 'shop', labels: nsLabels }, r.config)), 'offline, weft inject would inject it: the label is the way in');
});

t.test('the selector evaluator follows Kubernetes semantics', async (t) => {
  t.ok(selectorMatches(undefined, {}));
  t.ok(selectorMatches({}, { a: 'x' }), 'an empty selector matches everything');
  t.ok(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['x'] }] }, {}), 'NotIn matches a missing label');
  t.notOk(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'In', values: ['x'] }] }, {}), 'In needs the label');
  t.ok(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, { a: '' }));
  t.notOk(selectorMatches({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, { a: '' }));
  t.notOk(selectorMatches({ matchLabels: { a: 'x' }, matchExpressions: [{ key: 'b', operator: 'DoesNotExist' }] }, { a: 'x', b: 'y' }), 'terms are ANDed');
  t.notOk(selectorMatches({ matchLabels: { a: 'x' } }, { a: 'y' }));
  t.throws(() => selectorMatches({ matchExpressions: [{ key: 'a', operator: 'Equals', values: ['x'] }] }, {}), /unknown operator "Equals"/);
  t.throws(() => selectorMatches({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }, {}), /needs values/);
  const hook: MutatingWebhook = { name: 'w', clientConfig: {}, rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }] };
  const req = { group: '', version: 'v1', resource: 'pods', operation: 'CREATE', namespaceLabels: {}, objectLabels: {} };
  t.ok(webhookCalled(hook, req));
  t.notOk(webhookCalled(hook, { ...req, operation: 'UPDATE' }), 'rules filter operations');
  t.notOk(webhookCalled(hook, { ...req, resource: 'services' }), 'and resources');
});
