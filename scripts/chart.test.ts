// The Helm chart, checked with the real helm binary (scripts/get-helm.sh): lint, renders of
// every documented option, schema rejections, Kubernetes OpenAPI validation of every
// rendered object, the webhook's TLS material, and the webhook selectors' opt-in decisions.
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseValuesYaml } from '../pkg/api/values.js';
import { chartDir, helm, helmPath, renderChart, repoRoot } from './helm.js';
import { KUBE_SCHEMAS, kubeModelsDir, strictValidator, validateObject } from './kube-validate.js';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; annotations?: Record<string, string> }; [k: string]: unknown };
// Deliberately loose: tests walk rendered YAML whose shape they assert on.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;


function docs(yaml: string): Obj[] {
  return parseAllDocuments(yaml)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null && typeof o === 'object');
}
const find = (objs: Obj[], kind: string, name?: string): Any => objs.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
const all = (objs: Obj[], kind: string): Any[] => objs.filter((o) => o.kind === kind);

/** Options a user may set, each rendered, validated and linted. */
const OPTIONS: Record<string, Record<string, string>> = {
  default: {},
  certManager: { 'certManager.enabled': 'true' },
  certManagerIssuer: { 'certManager.enabled': 'true', 'certManager.issuerRef.name': 'corp-ca', 'certManager.issuerRef.kind': 'ClusterIssuer' },
  monitoring: { 'monitoring.enabled': 'true', 'monitoring.labels.release': 'prom' },
  failurePolicyIgnore: { 'webhook.failurePolicy': 'Ignore' },
  nativeSidecarFalse: { 'proxy.nativeSidecar': 'false' },
  defaultModeEbpf: { 'interception.defaultMode': 'ebpf' },
  oneReplica: { 'controller.replicas': '1' },
  pinnedImage: { 'image.repository': 'registry.example/weft', 'image.tag': '9.9.9', 'imagePullSecrets[0].name': 'regcred' },
};

function run(): void {
  const rendered: Record<string, Obj[]> = {};
  for (const [name, set] of Object.entries(OPTIONS)) rendered[name] = docs(renderChart({ set, includeCrds: true }));
  const def = rendered.default!;

  t.test('helm lint --strict passes with default values and with every option', async (t) => {
    for (const [name, set] of Object.entries(OPTIONS)) {
      const args = ['lint', '--strict', chartDir, '--namespace', 'weft-system'];
      for (const [k, v] of Object.entries(set)) args.push('--set', `${k}=${v}`);
      const r = helm(args);
      t.equal(r.status, 0, `${name}: ${r.stdout}${r.stderr}`);
    }
  });

  t.test('default render: the controller Deployment is hardened, probed and reads the values file', async (t) => {
    const d = find(def, 'Deployment');
    t.equal(d.spec.replicas, 2);
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    t.same(pod.securityContext, { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    t.equal(c.securityContext.readOnlyRootFilesystem, true);
    t.equal(c.securityContext.allowPrivilegeEscalation, false);
    t.same(c.securityContext.capabilities.drop, ['ALL']);
    t.equal(c.image, 'ghcr.io/weft-dev/weft:0.1.0', 'tag defaults to appVersion');
    t.ok(c.args.includes('--values=/etc/weft/values.yaml'));
    const admin = c.ports.find((p: Any) => p.name === 'http-admin');
    t.equal(admin.containerPort, 9090);
    t.same([c.livenessProbe.httpGet.path, c.readinessProbe.httpGet.path], ['/healthz', '/readyz']);
    t.equal(c.livenessProbe.httpGet.port, 'http-admin');
    t.ok(c.resources.requests.cpu && c.resources.limits.memory, 'resources set');
    t.ok(pod.affinity.podAntiAffinity, 'replicas spread over nodes');
    t.equal(find(def, 'PodDisruptionBudget').spec.minAvailable, 1);
    const svc = find(def, 'Service');
    const https = svc.spec.ports.find((p: Any) => p.port === 443);
    t.equal(https.targetPort, 'https-webhook');
    t.equal(c.ports.find((p: Any) => p.name === 'https-webhook').containerPort, 9443, 'Service 443 -> 9443');
  });

  t.test('the controller ConfigMap is a values file the controller accepts, with the resolved image', async (t) => {
    for (const name of ['default', 'nativeSidecarFalse', 'defaultModeEbpf', 'pinnedImage']) {
      const cm = find(rendered[name]!, 'ConfigMap');
      const v = parseValuesYaml(cm.data['values.yaml'], `${name} ConfigMap`);
      if (name === 'default') t.equal(v.image.tag, '0.1.0');
      if (name === 'nativeSidecarFalse') t.equal(v.proxy.nativeSidecar, false);
      if (name === 'defaultModeEbpf') t.equal(v.interception.defaultMode, 'ebpf');
      if (name === 'pinnedImage') t.same([v.image.repository, v.image.tag], ['registry.example/weft', '9.9.9']);
    }
    const d = find(rendered.pinnedImage!, 'Deployment');
    t.equal(d.spec.template.spec.containers[0].image, 'registry.example/weft:9.9.9', 'sidecar image == controller image');
    t.same(d.spec.template.spec.imagePullSecrets, [{ name: 'regcred' }]);
  });

  t.test('RBAC grants exactly what the controller uses', async (t) => {
    const role = find(def, 'ClusterRole');
    const grants = new Set<string>();
    for (const r of role.rules) for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) grants.add(`${g}/${res}:${v}`);
    t.same([...grants].sort(), [
      '/events:create',
      '/namespaces:get', '/namespaces:list', '/namespaces:watch',
      '/pods:get', '/pods:list', '/pods:watch',
      'authentication.k8s.io/tokenreviews:create',
      'policy.weft.dev/authorizationpolicies/status:update',
      'policy.weft.dev/authorizationpolicies:get', 'policy.weft.dev/authorizationpolicies:list', 'policy.weft.dev/authorizationpolicies:watch',
    ].sort());
    const binding = find(def, 'ClusterRoleBinding');
    t.same(binding.subjects, [{ kind: 'ServiceAccount', name: 'weft-controller', namespace: 'weft-system' }]);
  });

  t.test('webhooks: injection on pod CREATE, policy validation, configurable failurePolicy', async (t) => {
    const m = find(def, 'MutatingWebhookConfiguration');
    t.equal(m.webhooks.length, 2);
    for (const w of m.webhooks) {
      t.equal(w.clientConfig.service.path, '/inject');
      t.same(w.rules, [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }]);
      t.equal(w.sideEffects, 'NoneOnDryRun', 'skip Events are sent, but never for a dryRun review');
      t.same(w.admissionReviewVersions, ['v1']);
      t.equal(w.failurePolicy, 'Fail');
      t.equal(w.reinvocationPolicy, 'IfNeeded');
      t.equal(w.timeoutSeconds, 10);
    }
    const v = find(def, 'ValidatingWebhookConfiguration');
    t.equal(v.webhooks[0].clientConfig.service.path, '/validate');
    t.same(v.webhooks[0].rules[0].resources, ['authorizationpolicies']);
    const ign = rendered.failurePolicyIgnore!;
    for (const w of [...find(ign, 'MutatingWebhookConfiguration').webhooks, ...find(ign, 'ValidatingWebhookConfiguration').webhooks]) t.equal(w.failurePolicy, 'Ignore', w.name);
  });

  t.test('Helm-made certificates: the caBundle signed the serving certificate, which names the Service', async (t) => {
    const secret = find(def, 'Secret');
    const ca = new X509Certificate(Buffer.from(secret.data['ca.crt'], 'base64'));
    const crt = new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64'));
    t.ok(crt.verify(ca.publicKey), 'tls.crt is signed by ca.crt');
    t.equal(crt.checkHost('weft-controller.weft-system.svc'), 'weft-controller.weft-system.svc');
    t.ok(Buffer.from(secret.data['tls.key'], 'base64').toString().includes('PRIVATE KEY'));
    const bundles = [...find(def, 'MutatingWebhookConfiguration').webhooks, ...find(def, 'ValidatingWebhookConfiguration').webhooks].map((w: Any) => w.clientConfig.caBundle);
    t.same(new Set(bundles), new Set([secret.data['ca.crt']]), 'every webhook trusts that CA');
    const tpl = readFileSync(join(chartDir, 'templates', 'webhook.yaml'), 'utf8');
    t.match(tpl, /lookup "v1" "Secret"/, 'an existing Secret is reused on upgrade');
  });

  t.test('certManager: Issuer + Certificate, CA injected by annotation, no Helm-made secret', async (t) => {
    const cm = rendered.certManager!;
    t.notOk(find(cm, 'Secret'));
    t.ok(find(cm, 'Issuer'));
    const cert = find(cm, 'Certificate');
    t.equal(cert.spec.secretName, 'weft-webhook-tls');
    t.ok(cert.spec.dnsNames.includes('weft-controller.weft-system.svc'));
    for (const k of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const w = find(cm, k);
      t.equal(w.metadata.annotations['cert-manager.io/inject-ca-from'], 'weft-system/weft-controller', k);
      t.notOk(w.webhooks.some((x: Any) => x.clientConfig.caBundle), `${k} has no static caBundle`);
    }
    const own = rendered.certManagerIssuer!;
    t.notOk(find(own, 'Issuer'), 'an existing issuer is used as is');
    t.same(find(own, 'Certificate').spec.issuerRef, { name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
  });

  t.test('monitoring: ServiceMonitor for the controller, PodMonitor for the proxies', async (t) => {
    t.notOk(find(def, 'ServiceMonitor'));
    const mon = rendered.monitoring!;
    const sm = find(mon, 'ServiceMonitor');
    t.equal(sm.metadata.labels.release, 'prom');
    t.equal(sm.spec.endpoints[0].port, 'http-admin');
    const svc = find(mon, 'Service');
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) t.equal(svc.metadata.labels[k], v, `ServiceMonitor selects the Service by ${k}`);
    const pm = find(mon, 'PodMonitor');
    t.match(JSON.stringify(pm.spec.podMetricsEndpoints), /15020/);
  });

  t.test('one replica: the disruption budget does not block node drains', async (t) => {
    const pdb = find(rendered.oneReplica!, 'PodDisruptionBudget');
    t.equal(pdb.spec.maxUnavailable, 1);
    t.equal(pdb.spec.minAvailable, undefined);
  });

  t.test('bad values fail with the schema error naming the field', async (t) => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ 'webhok.failurePolicy': 'Fail' }, /additional propert.*webhok/],
      [{ 'proxy.nativeSidcar': 'false' }, /\/proxy.*additional propert.*nativeSidcar/],
      [{ 'webhook.failurePolicy': 'Sometimes' }, /\/webhook\/failurePolicy.*must be one of/],
      [{ 'interception.defaultMode': 'iptables' }, /\/interception\/defaultMode.*must be one of/],
      [{ 'controller.replicas': '0' }, /\/controller\/replicas/],
    ];
    for (const [set, re] of cases) {
      const args = ['template', 'weft', chartDir];
      for (const [k, v] of Object.entries(set)) args.push('--set', `${k}=${v}`);
      const r = helm(args);
      t.not(r.status, 0, JSON.stringify(set));
      t.match(r.stderr, re, JSON.stringify(set));
    }
  });

  t.test('the chart refuses Kubernetes older than 1.29', async (t) => {
    const r = helm(['template', 'weft', chartDir, '--kube-version', '1.28.9']);
    t.not(r.status, 0);
    t.match(r.stderr, /kubeVersion|Kubernetes version/i);
  });

  const models = kubeModelsDir();
  const skip = 'skip' in models ? models.skip : false;
  t.test('every rendered object is valid against the Kubernetes OpenAPI schemas', { skip }, async (t) => {
    if ('skip' in models) return;
    for (const schema of KUBE_SCHEMAS) {
      let checked = 0;
      for (const [name, objs] of Object.entries(rendered)) {
        for (const o of objs) {
          const errs = await validateObject(models.dir, schema, o);
          if (errs === undefined) continue;
          checked++;
          t.same(errs, [], `${name}: ${o.kind}/${o.metadata.name} on Kubernetes ${schema.kube}`);
        }
      }
      t.ok(checked >= 11 * Object.keys(rendered).length - 10, `Kubernetes ${schema.kube}: ${checked} objects validated`);
    }
    // The validators do catch mistakes (not a test that cannot fail).
    const bad = structuredClone(find(def, 'Deployment'));
    bad.spec.template.spec.containers[0].ports[0].containerPort = 'https';
    t.not((await validateObject(models.dir, KUBE_SCHEMAS[1], bad))?.length ?? 0, 0, 'a string containerPort is rejected');
  });

  t.test('no rendered object has an unknown or misspelt field (strict, Kubernetes 1.27 field set)', { skip }, async (t) => {
    if ('skip' in models) return;
    const strict = strictValidator(models.dir);
    for (const [name, objs] of Object.entries(rendered)) {
      for (const o of objs) {
        const errs = strict(o);
        if (errs !== undefined) t.same(errs, [], `${name}: ${o.kind}/${o.metadata.name}`);
      }
    }
    const bad = structuredClone(find(def, 'Deployment'));
    bad.spec.template.spec.containers[0].securityContex = {};
    t.match(strict(bad)?.join('\n') ?? '', /securityContex/, 'a misspelt field is rejected');
  });

  t.test('values.yaml documents every value with a # -- comment', async (t) => {
    const lines = readFileSync(join(chartDir, 'values.yaml'), 'utf8').split('\n');
    lines.forEach((l, i) => {
      if (/^\s*[A-Za-z][\w]*:/.test(l)) t.match(lines[i - 1] ?? '', /^\s*# -- \S/, `line ${i + 1} "${l.trim()}" is documented`);
    });
    const parsed = parseYaml(lines.join('\n')) as Record<string, unknown>;
    t.ok(parsed.certManager && parsed.monitoring && parsed.webhook, 'chart-only and shared keys both present');
  });

  t.test('manifests/install.yaml is the deterministic cert-manager render for weft-system', async (t) => {
    const text = readFileSync(join(repoRoot, 'manifests', 'install.yaml'), 'utf8');
    const objs = docs(text);
    t.equal(objs[0]?.kind, 'Namespace');
    t.equal(objs[0]?.metadata.name, 'weft-system');
    t.ok(find(objs, 'CustomResourceDefinition', 'authorizationpolicies.policy.weft.dev'), 'CRD included');
    t.ok(find(objs, 'Certificate'), 'certificates come from cert-manager');
    t.notOk(find(objs, 'Secret'), 'no random key material in the static manifest');
    for (const o of all(objs, 'Deployment')) t.equal(o.metadata.namespace, 'weft-system');
    const again = renderChart({ namespace: 'weft-system', includeCrds: true, set: { 'certManager.enabled': 'true' } });
    t.ok(text.endsWith(again.replace(/^\n+/, '')), 'a fresh render is byte-identical to the committed manifest');
  });
}

let helmMissing: string | undefined;
try {
  helmPath();
} catch (e) {
  helmMissing = (e as Error).message;
}
if (helmMissing) t.test('chart tests', { skip: `helm unavailable: ${helmMissing}` }, async () => {});
else run();
