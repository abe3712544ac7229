// The Helm chart, checked with the real helm binary (scripts/get-helm.sh): lint, renders of
// every documented option, schema rejections, Kubernetes OpenAPI validation of every
// rendered object, the webhook's TLS material, and the webhook selectors' opt-in decisions.
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import type { Pod } from '../pkg/api/k8s-types.js';
import { defaultValues, parseValuesYaml } from '../pkg/api/values.js';
import { injectPod, isSkip } from '../pkg/inject/index.js';
import { chartDir, helm, helmPath, renderChart, repoRoot } from './helm.js';
import { KUBE_MINORS, kubeValidator, modelsValidate } from './kube-validate.js';

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
  controllerAffinity: {
    'controller.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key': 'kubernetes.io/os',
    'controller.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator': 'In',
    'controller.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]': 'linux',
  },
  controllerScheduling: {
    'controller.tolerations[0].key': 'dedicated',
    'controller.tolerations[0].operator': 'Equal',
    'controller.tolerations[0].value': 'mesh',
    'controller.tolerations[0].effect': 'NoSchedule',
    'controller.nodeSelector.kubernetes\\.io/os': 'linux',
    'controller.priorityClassName': 'system-cluster-critical',
  },
  controllerPodMeta: { 'controller.podLabels.team': 'mesh', 'controller.podAnnotations.example\\.com/owner': 'mesh-team' },
  serviceMonitorOnly: { 'monitoring.enabled': 'true', 'monitoring.podMonitor': 'false' },
  podMonitorOnly: { 'monitoring.enabled': 'true', 'monitoring.serviceMonitor': 'false' },
  namespaceSelectorLabel: { 'webhook.namespaceSelectorLabel': 'mesh.example.com/inject' },
  reinvocationNever: { 'webhook.reinvocationPolicy': 'Never' },
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
      '/namespaces:list', '/namespaces:watch',
      '/pods:list', '/pods:watch',
      'authentication.k8s.io/tokenreviews:create',
      'policy.weft.dev/authorizationpolicies/status:update',
      'policy.weft.dev/authorizationpolicies:list', 'policy.weft.dev/authorizationpolicies:watch',
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

  t.test('certManager: self-signed Issuer -> CA Certificate -> CA Issuer -> serving Certificate; caBundle from the CA', async (t) => {
    const cm = rendered.certManager!;
    t.notOk(find(cm, 'Secret'), 'no Helm-made key material');
    const issuers = all(cm, 'Issuer');
    const certs = all(cm, 'Certificate');
    const selfSigned = issuers.find((i: Any) => i.spec.selfSigned);
    const caIssuer = issuers.find((i: Any) => i.spec.ca);
    t.equal(issuers.length, 2);
    t.equal(certs.length, 2);
    const ca = certs.find((c: Any) => c.spec.isCA === true);
    const serving = certs.find((c: Any) => c.spec.isCA !== true);
    t.same(ca.spec.issuerRef, { name: selfSigned.metadata.name, kind: 'Issuer', group: 'cert-manager.io' }, 'the self-signed issuer signs only the CA');
    t.equal(caIssuer.spec.ca.secretName, ca.spec.secretName, "the CA issuer signs with the CA certificate's key");
    t.same(serving.spec.issuerRef, { name: caIssuer.metadata.name, kind: 'Issuer', group: 'cert-manager.io' }, 'the serving certificate comes from the CA issuer');
    t.equal(serving.spec.secretName, 'weft-webhook-tls', 'the Secret the controller mounts');
    t.ok(serving.spec.dnsNames.includes('weft-controller.weft-system.svc'));
    t.not(ca.spec.secretName, serving.spec.secretName);
    for (const k of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const w = find(cm, k);
      t.equal(w.metadata.annotations['cert-manager.io/inject-ca-from'], `weft-system/${ca.metadata.name}`, `${k}: caBundle is the CA, stable across serving-certificate renewals`);
      t.notOk(w.webhooks.some((x: Any) => x.clientConfig.caBundle), `${k} has no static caBundle`);
    }
    const own = rendered.certManagerIssuer!;
    t.notOk(find(own, 'Issuer'), 'an existing issuer is used as is');
    t.equal(all(own, 'Certificate').length, 1, 'and no CA of our own');
    t.same(find(own, 'Certificate').spec.issuerRef, { name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
    t.equal(find(own, 'MutatingWebhookConfiguration').metadata.annotations['cert-manager.io/inject-ca-from'], 'weft-system/weft-controller', "a named issuer: the serving certificate's ca.crt is that issuer's CA");
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
    // One target per pod: the port the injector gives the proxy's admin listener, by name.
    const injected = injectPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'shop' }, spec: { containers: [{ name: 'web', image: 'nginx', ports: [{ name: 'http', containerPort: 8080 }] }] } } as Pod, { name: 'shop' }, { values: defaultValues(), version: '0.1.0' });
    if (isSkip(injected)) throw new Error(`not injected: ${injected.message}`);
    const proxy = [...(injected.injectedPod.spec.initContainers ?? []), ...injected.injectedPod.spec.containers].find((c) => c.name === 'weft-proxy');
    const admin = proxy?.ports?.find((p) => p.containerPort === defaultValues().proxy.ports.admin);
    t.ok(admin?.name, 'the proxy names its admin port');
    t.same(pm.spec.podMetricsEndpoints.map((e: Any) => e.port), [admin?.name], 'the PodMonitor scrapes exactly that port');
    t.equal(pm.spec.podMetricsEndpoints[0].path, '/metrics');
    t.notMatch(JSON.stringify(pm.spec.podMetricsEndpoints), /__address__/, 'no address rewriting (which made one target per declared port)');
  });

  t.test('each documented option shows in the render', async (t) => {
    const podOf = (name: string): Any => find(rendered[name]!, 'Deployment').spec.template;
    const expr = podOf('controllerAffinity').spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0];
    t.same(expr, { key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }, 'controller.affinity replaces the default');
    t.notOk(podOf('controllerAffinity').spec.affinity.podAntiAffinity, 'the default anti-affinity gives way to the given affinity');
    const sched = podOf('controllerScheduling').spec;
    t.same(sched.tolerations, [{ key: 'dedicated', operator: 'Equal', value: 'mesh', effect: 'NoSchedule' }], 'controller.tolerations');
    t.same(sched.nodeSelector, { 'kubernetes.io/os': 'linux' }, 'controller.nodeSelector');
    t.equal(sched.priorityClassName, 'system-cluster-critical', 'controller.priorityClassName');
    t.notOk(podOf('default').spec.priorityClassName, 'no priorityClassName by default');
    const meta = podOf('controllerPodMeta').metadata;
    t.equal(meta.labels.team, 'mesh', 'controller.podLabels');
    t.equal(meta.annotations['example.com/owner'], 'mesh-team', 'controller.podAnnotations');
    const selector = find(rendered.controllerPodMeta!, 'Deployment').spec.selector.matchLabels;
    t.notOk('team' in selector, 'extra pod labels stay out of the immutable selector');
    t.ok(find(rendered.serviceMonitorOnly!, 'ServiceMonitor') && !find(rendered.serviceMonitorOnly!, 'PodMonitor'), 'monitoring.podMonitor=false');
    t.ok(find(rendered.podMonitorOnly!, 'PodMonitor') && !find(rendered.podMonitorOnly!, 'ServiceMonitor'), 'monitoring.serviceMonitor=false');
    for (const w of find(rendered.namespaceSelectorLabel!, 'MutatingWebhookConfiguration').webhooks) {
      const keys = [...w.namespaceSelector.matchExpressions, ...w.objectSelector.matchExpressions].map((e: Any) => e.key);
      t.ok(keys.includes('mesh.example.com/inject') && !keys.includes('weft.dev/inject'), `${w.name}: selectors use webhook.namespaceSelectorLabel`);
    }
    t.equal(parseValuesYaml(find(rendered.namespaceSelectorLabel!, 'ConfigMap').data['values.yaml']).webhook.namespaceSelectorLabel, 'mesh.example.com/inject', 'and the controller reads it');
    for (const w of find(rendered.reinvocationNever!, 'MutatingWebhookConfiguration').webhooks) t.equal(w.reinvocationPolicy, 'Never', w.name);
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

  // Custom resources of other projects: no Kubernetes schema knows them.
  const CUSTOM_KINDS = new Set(['cert-manager.io/v1 Issuer', 'cert-manager.io/v1 Certificate', 'monitoring.coreos.com/v1 ServiceMonitor', 'monitoring.coreos.com/v1 PodMonitor']);
  for (const minor of KUBE_MINORS) {
    t.test(`every rendered object, every option: valid and strict against Kubernetes 1.${minor}`, async (t) => {
      const v = kubeValidator(minor);
      let checked = 0;
      for (const [name, objs] of Object.entries(rendered)) {
        for (const o of objs) {
          const errs = v.validate(o);
          const what = `${name}: ${o.apiVersion} ${o.kind}/${o.metadata.name}`;
          if (errs === undefined) {
            t.ok(CUSTOM_KINDS.has(`${o.apiVersion} ${o.kind}`), `${what}: no schema, so it must be a known custom resource`);
            continue;
          }
          checked++;
          t.same(errs, [], what);
        }
      }
      t.ok(checked >= 10 * Object.keys(rendered).length, `${checked} objects validated`);
    });
  }

  t.test('the validators catch mistakes, per Kubernetes version', async (t) => {
    const bad = structuredClone(find(def, 'Deployment'));
    const c = bad.spec.template.spec.containers[0];
    c.securityContex = {};
    c.ports[0].containerPort = 'https';
    delete bad.spec.selector;
    const errs = kubeValidator(29).validate(bad)?.join('\n') ?? '';
    t.match(errs, /containers\/0 must NOT have additional properties: securityContex/, 'a misspelt field');
    t.match(errs, /containerPort must be number/, 'a wrong type');
    t.match(errs, /\/spec must have required property 'selector'/, 'a missing required field');
    // securityContext.appArmorProfile arrived in Kubernetes 1.30: the minors differ.
    const armored = structuredClone(find(def, 'Deployment'));
    armored.spec.template.spec.containers[0].securityContext.appArmorProfile = { type: 'RuntimeDefault' };
    t.match(kubeValidator(29).validate(armored)?.join('\n') ?? '', /additional properties: appArmorProfile/, '1.29 has no appArmorProfile');
    for (const minor of [30, 31, 32, 33] as const) t.same(kubeValidator(minor).validate(armored), [], `1.${minor} has it`);
    t.equal(kubeValidator(33).validate({ apiVersion: 'policy.weft.dev/v1', kind: 'PodDisruptionBudget' }), undefined, "another group's kind is not mistaken for Kubernetes'");
  });

  t.test('every rendered object passes kubernetes-models (Kubernetes 1.33.0: enums and formats)', async (t) => {
    for (const [name, objs] of Object.entries(rendered)) {
      for (const o of objs) {
        const errs = await modelsValidate(o);
        if (errs !== undefined) t.same(errs, [], `${name}: ${o.kind}/${o.metadata.name}`);
      }
    }
    const bad = structuredClone(find(def, 'Deployment'));
    bad.spec.template.spec.containers[0].imagePullPolicy = 'Sometimes';
    t.match((await modelsValidate(bad))?.join('\n') ?? '', /imagePullPolicy/, 'an enum value outside the API is rejected');
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
