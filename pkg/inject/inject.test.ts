// Decisions of the injector a user notices: who is injected, why not, and which annotation
// values are refused with what message.
import t from 'tap';
import type { Pod } from '../api/k8s-types.js';
import { defaultValues } from '../api/values.js';
import { injectPod, isSkip, skipEvent, SKIP_SENTENCES, SkipReasons, type InjectConfig, type Injected } from './index.js';

const config: InjectConfig = { values: defaultValues(), version: '0.1.0', controllerNamespace: 'weft-system' };
const pod = (over: { annotations?: Record<string, string>; labels?: Record<string, string>; spec?: Partial<Pod['spec']> } = {}): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'shop', ...(over.annotations ? { annotations: over.annotations } : {}), ...(over.labels ? { labels: over.labels } : {}) },
  spec: { containers: [{ name: 'app', image: 'app:1' }], ...over.spec },
});
const injected = (r: ReturnType<typeof injectPod>): Injected => {
  if (isSkip(r)) throw new Error(`expected injection, got skip ${r.skip}`);
  return r;
};

t.test('skip reasons, in the order they are decided', async (t) => {
  const cases: [string, Pod, { name: string; labels?: Record<string, string> }, string][] = [
    ['kube-system', pod(), { name: 'kube-system' }, SkipReasons.SYSTEM_NAMESPACE],
    ['kube-node-lease', pod(), { name: 'kube-node-lease' }, SkipReasons.SYSTEM_NAMESPACE],
    ["weft's own namespace", pod(), { name: 'weft-system' }, SkipReasons.CONTROLLER_NAMESPACE],
    ['hostNetwork', pod({ spec: { hostNetwork: true } }), { name: 'shop' }, SkipReasons.HOST_NETWORK],
    ['already injected', pod({ annotations: { 'weft.dev/injected': '0.1.0/sha256:x' } }), { name: 'shop' }, SkipReasons.ALREADY_INJECTED],
    ['pod annotation disabled beats namespace enabled', pod({ annotations: { 'weft.dev/inject': 'disabled' } }), { name: 'shop', labels: { 'weft.dev/inject': 'enabled' } }, SkipReasons.OPTED_OUT],
    ['namespace disabled', pod(), { name: 'shop', labels: { 'weft.dev/inject': 'disabled' } }, SkipReasons.OPTED_OUT],
    ['namespace not labelled', pod(), { name: 'shop', labels: {} }, SkipReasons.NOT_OPTED_IN],
    ['port 15020 in use', pod({ spec: { containers: [{ name: 'a', ports: [{ containerPort: 15020 }] }] } }), { name: 'shop' }, SkipReasons.PORT_CONFLICT],
    ['init container on 15008', pod({ spec: { initContainers: [{ name: 'i', ports: [{ containerPort: 15008 }] }] } }), { name: 'shop' }, SkipReasons.PORT_CONFLICT],
    ['container runs as 1337', pod({ spec: { containers: [{ name: 'a', securityContext: { runAsUser: 1337 } }] } }), { name: 'shop' }, SkipReasons.UID_CONFLICT],
    ['pod runs as gid 1337', pod({ spec: { securityContext: { runAsGroup: 1337 } } }), { name: 'shop' }, SkipReasons.UID_CONFLICT],
  ];
  for (const [what, p, ns, reason] of cases) {
    const r = injectPod(p, ns, config);
    t.ok(isSkip(r) && r.skip === reason, `${what} → ${reason}`);
    if (isSkip(r)) t.match(r.message, SKIP_SENTENCES[r.skip], 'message starts with the readable sentence');
  }
});

t.test('opt-in: the pod wins over its namespace; label or annotation', async (t) => {
  const ns = { name: 'shop', labels: {} };
  t.notOk(isSkip(injectPod(pod({ labels: { 'weft.dev/inject': 'enabled' } }), ns, config)), 'pod label enabled in an unlabelled namespace');
  t.notOk(isSkip(injectPod(pod({ annotations: { 'weft.dev/inject': 'enabled' } }), ns, config)), 'pod annotation enabled');
  const r = injectPod(pod({ labels: { 'weft.dev/inject': 'enabled' }, annotations: { 'weft.dev/inject': 'disabled' } }), ns, config);
  t.ok(isSkip(r) && r.skip === 'opted-out', 'annotation beats label');
  t.notOk(isSkip(injectPod(pod(), { name: 'shop' }, config)), 'namespace labels unknown (webhook: the selector already chose) → injected');
});

t.test('invalid annotation values are refused, naming the annotation and what is allowed', async (t) => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ intercept: 'ebpff' }, /annotation intercept: "ebpff" is invalid; allowed: tproxy, ebpf/],
    [{ 'weft.dev/intercept': 'nft' }, /weft.dev\/intercept: "nft" is invalid; allowed: tproxy, ebpf/],
    [{ intercept: 'tproxy', 'weft.dev/intercept': 'ebpf' }, /disagree/],
    [{ 'weft.dev/exclude-inbound-ports': '80,70000' }, /weft.dev\/exclude-inbound-ports: "70000" is invalid; allowed: a comma-separated list of ports 1-65535/],
    [{ 'weft.dev/exclude-outbound-ports': 'http' }, /weft.dev\/exclude-outbound-ports: "http"/],
    [{ 'weft.dev/opaque-ports': '0' }, /weft.dev\/opaque-ports: "0"/],
    [{ 'weft.dev/exclude-outbound-cidrs': '10.0.0.0/33' }, /weft.dev\/exclude-outbound-cidrs: "10.0.0.0\/33" is invalid; allowed: a comma-separated list of IPv4\/IPv6 CIDRs/],
    [{ 'weft.dev/include-outbound-cidrs': 'fd00::/129' }, /include-outbound-cidrs: "fd00::\/129"/],
    [{ 'weft.dev/proxy-memory': 'lots' }, /weft.dev\/proxy-memory: "lots" is invalid; allowed: a Kubernetes quantity/],
    [{ 'weft.dev/proxy-cpu': '-1' }, /weft.dev\/proxy-cpu: "-1"/],
    [{ 'weft.dev/proxy-cpu-limit': 'fast' }, /^annotation weft.dev\/proxy-cpu-limit: "fast" is invalid; allowed: a Kubernetes quantity/],
    [{ 'weft.dev/proxy-memory-limit': '1GB' }, /^annotation weft.dev\/proxy-memory-limit: "1GB" is invalid; allowed: a Kubernetes quantity/],
    [{ 'weft.dev/proxy-memory': '1Gi', 'weft.dev/proxy-memory-limit': '512Mi' }, /^annotation weft.dev\/proxy-memory-limit: "512Mi" is below the memory request 1Gi \(annotation weft.dev\/proxy-memory\)/],
    [{ 'weft.dev/proxy-cpu-limit': '50m' }, /^annotation weft.dev\/proxy-cpu-limit: "50m" is below the cpu request 100m \(values proxy.resources.requests.cpu\)/],
    [{ 'weft.dev/log-level': 'verbose' }, /weft.dev\/log-level: "verbose" is invalid; allowed: trace, debug, info, warn, error, silent/],
    [{ 'weft.dev/native-sidecar': 'no' }, /weft.dev\/native-sidecar: "no" is invalid; allowed: true, false/],
    [{ 'weft.dev/default-inbound-policy': 'block' }, /default-inbound-policy: "block" is invalid; allowed: allow, deny/],
    [{ 'weft.dev/inject': 'yes' }, /^annotation weft.dev\/inject: "yes" is invalid; allowed: enabled, disabled$/],
  ];
  for (const [annotations, message] of bad) {
    t.throws(() => injectPod(pod({ annotations }), { name: 'shop' }, config), { code: 'WEFT_ERR_BAD_ANNOTATION', message }, JSON.stringify(annotations));
    try {
      injectPod(pod({ annotations }), { name: 'shop' }, config);
    } catch (e) {
      t.notMatch((e as Error).message, /\b(\w+) \1\b/, `no doubled word in: ${(e as Error).message}`);
    }
  }
  t.throws(() => injectPod(pod({ labels: { 'weft.dev/inject': 'on' } }), { name: 'shop' }, config), {
    code: 'WEFT_ERR_BAD_ANNOTATION',
    message: /^label weft.dev\/inject: "on" is invalid; allowed: enabled, disabled$/,
  });
});

t.test('valid annotation values take effect', async (t) => {
  const r = injected(injectPod(pod({ annotations: { 'weft.dev/exclude-outbound-cidrs': '10.0.0.1, 2001:db8::/32', 'weft.dev/proxy-cpu': '0.5', 'weft.dev/proxy-memory': '1Gi' } }), { name: 'shop' }, config));
  const init = r.injectedPod.spec.initContainers?.[0];
  t.match(init?.args?.join(' '), /--exclude-outbound-cidrs 10.0.0.1,2001:db8::\/32/);
  const proxy = r.injectedPod.spec.initContainers?.[1];
  t.same(proxy?.resources, { requests: { cpu: '0.5', memory: '1Gi' }, limits: { memory: '1Gi' } }, 'memory sets request and the configured limit; cpu has no limit by default');
  const limited = (annotations: Record<string, string>) => injected(injectPod(pod({ annotations }), { name: 'shop' }, config)).injectedPod.spec.initContainers?.[1]?.resources;
  t.same(limited({ 'weft.dev/proxy-cpu-limit': '2', 'weft.dev/proxy-memory-limit': '1Gi' }), { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '1Gi', cpu: '2' } }, 'limit annotations set the limits only');
  t.same(limited({ 'weft.dev/proxy-memory': '300Mi', 'weft.dev/proxy-memory-limit': '0.5Gi' })?.limits, { memory: '0.5Gi' }, 'the limit annotation wins over the request copying into the limit');
  t.same(limited({ 'weft.dev/proxy-cpu': '1500m', 'weft.dev/proxy-cpu-limit': '1.5' }), { requests: { cpu: '1500m', memory: '64Mi' }, limits: { memory: '256Mi', cpu: '1.5' } }, 'equal request and limit in other units');
});

t.test('mode privileges: TPROXY proxy is uid 0 gid 1337 with NET_ADMIN only; eBPF proxy is 1337 and has none', async (t) => {
  const tp = injected(injectPod(pod(), { name: 'shop' }, config)).injectedPod.spec.initContainers ?? [];
  t.same(tp.map((c) => c.name), ['weft-init', 'weft-proxy']);
  t.match(tp[1]?.securityContext, { runAsUser: 0, runAsGroup: 1337, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] } });
  t.same(tp[0]?.securityContext?.capabilities, { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] });
  const eb = injected(injectPod(pod({ annotations: { intercept: 'ebpf' } }), { name: 'shop' }, config)).injectedPod.spec.initContainers ?? [];
  t.match(eb[1]?.securityContext, { runAsUser: 1337, runAsGroup: 1337, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
  t.notOk(eb[1]?.securityContext?.capabilities?.add, 'the eBPF proxy adds no capability');
  t.same(eb[0]?.securityContext?.capabilities, { drop: ['ALL'], add: ['BPF', 'NET_ADMIN'] }, 'least privilege: what attaching needs (e2e/inject.test.ts)');
  t.same(eb[0]?.env, [{ name: 'WEFT_POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } }]);
});

t.test('native sidecar sits after weft-init and before existing init containers', async (t) => {
  const p = pod({ spec: { initContainers: [{ name: 'setup' }] } });
  const r = injected(injectPod(p, { name: 'shop' }, config));
  t.same(r.injectedPod.spec.initContainers?.map((c) => [c.name, c.restartPolicy]), [
    ['weft-init', undefined],
    ['weft-proxy', 'Always'],
    ['setup', undefined],
  ]);
  t.same(p.spec.initContainers, [{ name: 'setup' }], 'the input pod is not modified');
});

t.test('drain grace fits inside the pod termination grace period', async (t) => {
  const r = injected(injectPod(pod({ spec: { terminationGracePeriodSeconds: 10 } }), { name: 'shop' }, config));
  t.match(r.injectedPod.spec.initContainers?.[1]?.args?.join(' '), /--drain-grace-ms 8000/);
});

t.test('the marker changes with what is injected, not with the app', async (t) => {
  const a = injected(injectPod(pod(), { name: 'shop' }, config)).marker;
  const b = injected(injectPod(pod({ annotations: { 'weft.dev/log-level': 'debug' } }), { name: 'shop' }, config)).marker;
  t.match(a, /^0\.1\.0\/sha256:[0-9a-f]{16}$/);
  t.not(a, b);
  t.equal(injected(injectPod(pod(), { name: 'shop' }, config)).marker, a, 'deterministic');
});

t.test('the proxy gets the pod labels at admission as sorted JSON (the file policy source selects on them)', async (t) => {
  const env = (labels?: Record<string, string>) => {
    const r = injected(injectPod(pod(labels ? { labels } : {}), { name: 'shop' }, config));
    const proxy = [...(r.injectedPod.spec.initContainers ?? []), ...r.injectedPod.spec.containers].find((c) => c.name === 'weft-proxy');
    return { value: proxy?.env?.find((e) => e.name === 'WEFT_POD_LABELS')?.value, marker: r.marker };
  };
  const a = env({ version: 'v2', app: 'web' });
  t.equal(a.value, '{"app":"web","version":"v2"}', 'keys sorted whatever the order in the manifest');
  t.equal(env({ app: 'web', version: 'v2' }).value, a.value);
  t.equal(env().value, undefined, 'no labels: no env (the proxy defaults to {})');
  t.not(env({ app: 'api' }).marker, a.marker, 'the marker reflects the injected labels');
});

t.test('skip events name the pod and the reason', async (t) => {
  const r = injectPod(pod({ spec: { hostNetwork: true } }), { name: 'shop' }, config);
  if (!isSkip(r)) return t.fail('expected skip');
  const e = skipEvent(pod(), 'shop', r);
  t.match(e, { kind: 'Event', type: 'Warning', reason: 'WeftInjectionSkipped', involvedObject: { kind: 'Pod', name: 'p', namespace: 'shop' }, message: /host-network/ });
});

t.test('a pod with only generateName (a Deployment pod at admission): the Event goes to its owner', async (t) => {
  const owner = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9f8', uid: '0b6e4c4a-1f1e-4c55-9d4e-3f0c1d2e3a4b', controller: true, blockOwnerDeletion: true };
  const p: Pod = { ...pod({ spec: { hostNetwork: true } }), metadata: { generateName: 'web-7d9f8-', namespace: 'shop', ownerReferences: [owner] } };
  const r = injectPod(p, { name: 'shop' }, config);
  if (!isSkip(r)) return t.fail('expected skip');
  const e = skipEvent(p, 'shop', r);
  t.same(e.involvedObject, { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9f8', namespace: 'shop', uid: owner.uid });
  t.match(e.message, /^weft did not inject the proxy into a new pod web-7d9f8-… of ReplicaSet web-7d9f8 \(host-network\)/);
  t.equal(e.metadata.generateName, 'web-7d9f8.weft-');

  const orphan: Pod = { ...p, metadata: { generateName: 'solo-', namespace: 'shop' } };
  const o = skipEvent(orphan, 'shop', r);
  t.same(o.involvedObject, { apiVersion: 'v1', kind: 'Pod', namespace: 'shop' }, 'no owner: the Pod, without inventing a name');
  t.match(o.message, /into a new pod solo-…/);

  const named = skipEvent({ ...p, metadata: { ...p.metadata, name: 'web-7d9f8-abcde' } }, 'shop', r);
  t.match(named.involvedObject, { kind: 'Pod', name: 'web-7d9f8-abcde' }, 'a pod with a name is itself the object');
});

t.test('conflict skips name the configured ports and ids, not the defaults', async (t) => {
  const values = defaultValues();
  const custom: InjectConfig = { ...config, values: { ...values, proxy: { ...values.proxy, uid: 2102, gid: 2103, ports: { ...values.proxy.ports, admin: 16020 } } } };
  const port = injectPod(pod({ spec: { containers: [{ name: 'a', ports: [{ containerPort: 16020 }] }] } }), { name: 'shop' }, custom);
  t.ok(isSkip(port) && port.skip === 'port-conflict');
  if (isSkip(port)) {
    t.match(port.message, /container a uses port 16020 \(the proxy's ports: 15001, 15006, 15008, 15021, 16020\)/);
    t.notMatch(port.message, /15020/, 'the default admin port, not in force, is not named');
  }
  t.notOk(isSkip(injectPod(pod({ spec: { containers: [{ name: 'a', ports: [{ containerPort: 15020 }] }] } }), { name: 'shop' }, custom)), '15020 is free when admin moved');
  const uid = injectPod(pod({ spec: { securityContext: { runAsUser: 2102 } } }), { name: 'shop' }, custom);
  t.ok(isSkip(uid) && uid.skip === 'uid-conflict' && /runs as uid 2102 \(the proxy's uid\)/.test(uid.message), isSkip(uid) ? uid.message : 'injected');
  t.notMatch(isSkip(uid) ? uid.message : '', /1337/);
});
