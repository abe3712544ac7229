import t from 'tap';
import { createAuthorizer, mapResolver } from './eval.js';
import { PolicyStore } from './store.js';

const pol = (name: string, spec: unknown) => ({ apiVersion: 'policy.weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name, namespace: 'shop' }, spec });
const pod = (ns: string, name: string, ip: string, extra: Record<string, unknown> = {}) => ({ metadata: { name, namespace: ns, labels: { app: name } }, spec: { serviceAccountName: `${name}-sa`, ...extra }, status: { phase: 'Running', podIP: ip } });

t.test('snapshots: selection, peers only when needed, defaults, last good policy', async (t) => {
  const s = new PolicyStore();
  s.upsertPod(pod('shop', 'api', '10.0.0.1'));
  s.upsertPod(pod('web', 'front', '10.1.0.5'));
  s.upsertPod(pod('kube-system', 'node-agent', '192.168.0.10', { hostNetwork: true }));
  s.upsertPod({ ...pod('web', 'old-job', '10.1.0.9'), status: { phase: 'Succeeded', podIP: '10.1.0.9' } });
  t.equal(s.snapshotFor('shop', 'nope'), undefined, 'unknown pod: no snapshot yet');

  t.match(s.upsertPolicy(pol('ips', { action: 'ALLOW', rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8'] } }] }] })), { accepted: true });
  t.same(s.snapshotFor('shop', 'api')?.peers, {}, 'ipBlocks only: no peer map sent');

  s.upsertPolicy(pol('ns', { selector: { matchLabels: { app: 'api' } }, action: 'DENY', rules: [{ from: [{ source: { notNamespaces: ['web'] } }] }] }));
  const snap = s.snapshotFor('shop', 'api')!;
  t.same(snap.policies.map((p) => p.ref), ['shop/ips', 'shop/ns']);
  t.same(snap.peers, { '10.1.0.5': { namespace: 'web', serviceAccount: 'front-sa' } }, 'only peers the policies can tell apart; host-network and finished pods never');
  t.notOk('defaultInbound' in snap);

  s.upsertNamespace({ metadata: { name: 'shop', annotations: { 'weft.dev/default-inbound-policy': 'deny' } } });
  t.equal(s.snapshotFor('shop', 'api')?.defaultInbound, 'deny', 'namespace annotation');
  s.upsertPod({ ...pod('shop', 'api', '10.0.0.1'), metadata: { name: 'api', namespace: 'shop', labels: { app: 'api' }, annotations: { 'weft.dev/default-inbound-policy': 'allow' } } });
  t.equal(s.snapshotFor('shop', 'api')?.defaultInbound, 'allow', 'the pod annotation wins');

  const bad = s.upsertPolicy(pol('ns', { action: 'DENY', rules: [{ from: [{ source: { notNamespaces: [''] } }] }] }));
  t.match(bad, { accepted: false, message: /spec\.rules\[0\]\.from\[0\]\.source\.notNamespaces\[0\].*last accepted version stays in force/ });
  t.same(s.snapshotFor('shop', 'api')?.policies.map((p) => p.ref), ['shop/ips', 'shop/ns'], 'the last good version is kept');
  s.deletePolicy('shop', 'ns');
  t.same(s.snapshotFor('shop', 'api')?.policies.map((p) => p.ref), ['shop/ips']);

  let calls = 0;
  s.subscribe(() => calls++);
  s.upsertPod(pod('web', 'a', '10.1.0.6'));
  s.upsertPod(pod('web', 'b', '10.1.0.7'));
  await Promise.resolve();
  t.equal(calls, 1, 'a burst of changes notifies once');
});

t.test('peers: only identities the selected policies name, and the same decisions as the full map', async (t) => {
  const s = new PolicyStore();
  const pods = [
    pod('shop', 'api', '10.0.0.1'),
    pod('web', 'front', '10.1.0.5'),
    pod('web', 'admin', '10.1.0.6'),
    pod('batch', 'jobs', '10.2.0.7'),
    pod('prod-eu', 'api', 'fd00::7'),
    pod('other', 'x', '10.9.0.1'),
  ];
  for (const p of pods) s.upsertPod(p);
  const peersWith = (spec: unknown) => {
    s.upsertPolicy(pol('p', spec));
    return Object.keys(s.snapshotFor('shop', 'api')!.peers);
  };
  t.same(peersWith({ rules: [{ from: [{ source: { namespaces: ['web'] } }] }] }), ['10.1.0.5', '10.1.0.6']);
  t.same(peersWith({ rules: [{ from: [{ source: { serviceAccounts: ['web/front-sa'] } }] }] }), ['10.1.0.5']);
  t.same(peersWith({ rules: [{ from: [{ source: { serviceAccounts: ['api-sa'] } }] }] }), ['10.0.0.1'], 'a bare name is the policy namespace');
  t.same(peersWith({ action: 'DENY', rules: [{ from: [{ source: { notNamespaces: ['prod-*'], notServiceAccounts: ['batch/*'] } }] }] }), ['10.2.0.7', 'fd00::7'], 'not-forms: the peers they exclude');
  t.same(peersWith({ rules: [{ to: [{ operation: { ports: [80] } }] }] }), [], 'no identity fields: no map');

  // The filtered map decides every peer exactly as the full one would.
  const full = mapResolver(Object.fromEntries(pods.map((p) => [p.status.podIP, { namespace: p.metadata.namespace, serviceAccount: p.spec.serviceAccountName }])));
  const specs = [
    { rules: [{ from: [{ source: { namespaces: ['web'], notServiceAccounts: ['web/admin-sa'] } }] }] },
    { action: 'DENY', rules: [{ from: [{ source: { notNamespaces: ['shop', 'web'] } }] }] },
    { rules: [{ from: [{ source: { serviceAccounts: ['*/api-sa'] } }, { source: { notNamespaces: ['b*'] } }] }] },
  ];
  for (const spec of specs) {
    s.upsertPolicy(pol('p', spec));
    const snap = s.snapshotFor('shop', 'api')!;
    const filtered = createAuthorizer(snap.policies, { defaultInbound: 'deny', peers: mapResolver(snap.peers) });
    const reference = createAuthorizer(snap.policies, { defaultInbound: 'deny', peers: full });
    for (const p of pods) {
      const r = { direction: 'inbound' as const, source: { address: p.status.podIP, port: 1 }, destination: { address: '10.0.0.1', port: 80 } };
      t.same(filtered.decide(r), reference.decide(r), `${JSON.stringify(spec)} from ${p.metadata.namespace}/${p.metadata.name}`);
    }
  }
});

t.test('status-only updates are not changes: no version bump, no stream notified', async (t) => {
  const s = new PolicyStore();
  s.upsertPod(pod('shop', 'api', '10.0.0.1'));
  s.upsertPolicy(pol('p', { rules: [{ from: [{ source: { namespaces: ['web'] } }] }] }));
  s.upsertNamespace({ metadata: { name: 'shop', annotations: { a: 'b' } } });
  await Promise.resolve(); // the notification of the set-up itself
  let calls = 0;
  s.subscribe(() => calls++);
  const v = s.version;
  // What the controller's own status write and the kubelet's pod status updates look like.
  s.upsertPolicy({ ...pol('p', { rules: [{ from: [{ source: { namespaces: ['web'] } }] }] }), status: { conditions: [{ type: 'Accepted', status: 'True' }] } });
  s.upsertPod({ ...pod('shop', 'api', '10.0.0.1'), status: { phase: 'Running', podIP: '10.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] } });
  s.upsertNamespace({ metadata: { name: 'shop', annotations: { a: 'b' }, resourceVersion: '9' } });
  await Promise.resolve();
  t.equal(s.version, v, 'version unchanged');
  t.equal(calls, 0, 'no stream recomputes its snapshot');
  s.upsertPolicy(pol('p', { rules: [{ from: [{ source: { namespaces: ['batch'] } }] }] }));
  await Promise.resolve();
  t.equal(calls, 1, 'a spec change is one');
  s.upsertPod({ ...pod('shop', 'api', '10.0.0.2') });
  await Promise.resolve();
  t.equal(calls, 2, 'a new pod address is one');
});
