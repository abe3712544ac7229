import t from 'tap';
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
  t.same(snap.peers, { '10.0.0.1': { namespace: 'shop', serviceAccount: 'api-sa' }, '10.1.0.5': { namespace: 'web', serviceAccount: 'front-sa' } }, 'host-network and finished pods are not peers');
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
