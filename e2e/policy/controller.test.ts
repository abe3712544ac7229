// The controller path end to end, in both interception modes: the server pod is injected with
// chart-like values (policy.controllerUrl + the controller CA), so its proxy gets --controller,
// --token-file and WEFT_CONTROLLER_CA_PEM from the real injector. The controller is the real
// policy plugin in a sandbox pod (controller-pod.ts), watching the test API server that plays
// the cluster; it checks the pod's token with TokenReview and streams policy over HTTPS signed
// by a private CA. (a) an identity-based ALLOW (serviceAccounts) admits client A and refuses
// client B; (b) changing the AuthorizationPolicy in the "cluster" flips that within 2 s
// (namespaces + notServiceAccounts), without restarting anything.
import t, { type Test } from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultValues } from '../../pkg/api/values.js';
import type { KubeObject } from '../../pkg/k8s/watch.js';
import { haveOpenssl, makePki } from '../../pkg/policy/testing.js';
import { createNode, type Pod, type SandboxPod } from '../sandbox/index.js';
import type { Feed } from './controller-pod.js';
import { NS, PORT, clientPod, get, inject, metric, nginxImage, proxyOf, seenByNginx, serverPod, within, type Mode } from './helpers.js';

const PREFIX = 'wfpc';
const CONTROLLER_JS = fileURLToPath(new URL('./controller-pod.js', import.meta.url));
const CONTROLLER_PORT = 9443;

const podObject = (name: string, serviceAccount: string, labels: Record<string, string>, pod?: SandboxPod): KubeObject =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels },
    spec: { serviceAccountName: serviceAccount },
    status: pod ? { phase: 'Running', podIP: pod.ipv4, podIPs: pod.ips.map((ip) => ({ ip })) } : { phase: 'Pending' },
  }) as KubeObject;

const webPolicy = (rules: unknown[]): KubeObject =>
  ({ apiVersion: 'policy.weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'web-allow', namespace: NS }, spec: { selector: { matchLabels: { app: 'web' } }, action: 'ALLOW', rules } }) as KubeObject;

/** The kubelet's part: the projected token for audience weft, as a file in a hostPath. */
function withToken(pod: Pod, hostDir: string): Pod {
  pod.spec.volumes = (pod.spec.volumes ?? []).map((v) => (v.name === 'weft-token' ? { name: 'weft-token', hostPath: { path: hostDir, type: 'Directory' } } : v));
  return pod;
}

async function modeCase(t: Test, mode: Mode): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `${PREFIX}-${mode}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755); // the eBPF-mode proxy (uid 1337) reads the token below it
  const node = await createNode({
    prefix: PREFIX,
    name: mode === 'tproxy' ? 'tp' : 'eb',
    t,
    images: { 'wfpe/nginx': nginxImage, 'wfpe/controller': (ctx) => ({ argv: [ctx.node.nodeBinary, CONTROLLER_JS, ctx.podDir, String(CONTROLLER_PORT)] }) },
  });
  const ctrl = await node.runPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'weft-controller', namespace: 'weft-system' }, spec: { containers: [{ name: 'controller', image: 'wfpe/controller:1' }] } }, { timeoutMs: 30000 });
  const pki = makePki(dir, 'ctl', ctrl.ips);
  const feed: Feed = { pods: [], namespaces: [{ metadata: { name: NS } }], policies: [], tokens: { 'tok-web': { username: `system:serviceaccount:${NS}:web`, extra: { 'authentication.kubernetes.io/pod-name': ['web'] }, audiences: ['weft'] } } };
  const publish = () => {
    writeFileSync(join(ctrl.dir, '.feed.tmp'), JSON.stringify(feed));
    renameSync(join(ctrl.dir, '.feed.tmp'), join(ctrl.dir, 'feed.json'));
  };
  publish();
  writeFileSync(join(ctrl.dir, 'tls.crt'), pki.cert);
  writeFileSync(join(ctrl.dir, 'tls.key'), pki.key);
  await ctrl.waitForLog('controller', /policy controller serving/, 20000);

  const a = await node.runPod(inject(clientPod('client-a', mode, 'frontend')), { timeoutMs: 30000 });
  const b = await node.runPod(inject(clientPod('client-b', mode, 'batch')), { timeoutMs: 30000 });
  feed.pods = [podObject('client-a', 'frontend', { app: 'client-a' }, a), podObject('client-b', 'batch', { app: 'client-b' }, b), podObject('web', 'web', { app: 'web', tier: 'front' })];
  feed.policies = [webPolicy([{ from: [{ source: { serviceAccounts: ['frontend'] } }] }])];
  publish();

  const values = defaultValues();
  values.policy.controllerUrl = `https://${ctrl.ipv4}:${CONTROLLER_PORT}`;
  values.policy.controllerCa = pki.ca;
  const injected = inject(serverPod('web', mode, { serviceAccount: 'web' }), values);
  const proxy = proxyOf(injected);
  t.match(proxy.args?.join(' '), new RegExp(`--controller https://${ctrl.ipv4.replaceAll('.', '\\.')}:${CONTROLLER_PORT} --token-file /var/run/secrets/weft\\.dev/serviceaccount/token`), 'the injector gave the proxy --controller and --token-file');
  t.equal(proxy.env?.find((e) => e.name === 'WEFT_CONTROLLER_CA_PEM')?.value, pki.ca, 'and the controller CA');
  t.match(injected.spec.volumes?.find((v) => v.name === 'weft-token'), { projected: { sources: [{ serviceAccountToken: { audience: 'weft' } }] } }, 'and a projected token for audience weft');
  const tokenDir = join(dir, 'token');
  mkdirSync(tokenDir);
  chmodSync(tokenDir, 0o755);
  writeFileSync(join(tokenDir, 'token'), 'tok-web\n', { mode: 0o644 });
  const web = await node.runPod(withToken(injected, tokenDir), { timeoutMs: 30000 });
  const url = `http://${web.ipv4}:${PORT}/`;
  const proxyPid = web.pid('weft-proxy');
  const tail = () => `web proxy:\n${web.logs('weft-proxy').split('\n').slice(-12).join('\n')}\ncontroller:\n${ctrl.logs('controller').split('\n').slice(-12).join('\n')}`;

  await t.test('(a) ALLOW serviceAccounts [frontend] from the controller: A 200, B refused before nginx', async (t) => {
    const ok = await within(10000, Date.now(), async () => (await get(a, url)).status === '200');
    t.ok(ok !== undefined, 'client A (service account frontend) gets 200');
    t.match(await get(a, `http://[${web.ipv6}]:${PORT}/`), { status: '200' }, 'also over IPv6 (podIPs resolve both families)');
    const before = seenByNginx(web).length;
    const got = await get(b, url);
    t.not(got.status, '200', `client B (service account batch) is refused (curl: ${got.err || got.status})`);
    t.equal(seenByNginx(web).length, before, 'nginx never saw client B');
    t.equal(await metric(node, web, 'weft_policy_stream_connected', /source="controller"/), 1, 'the proxy holds the controller stream');
    t.ok((await metric(node, web, 'weft_authz_decisions_total', /decision="deny"/)) >= 1, 'the deny was counted');
    if (ok === undefined || got.status === '200') t.comment(tail());
  });

  await t.test('(b) the policy changes in the cluster: enforced within 2 s, nothing restarted', async (t) => {
    feed.policies = [webPolicy([{ from: [{ source: { namespaces: [NS], notServiceAccounts: [`${NS}/frontend`] } }] }])];
    const wrote = Date.now();
    publish();
    const took = await within(2000, wrote, async () => (await get(b, url)).status === '200');
    t.ok(took !== undefined, `client B admitted within 2 s of the change (${took} ms)`);
    const gotA = await get(a, url);
    t.not(gotA.status, '200', `client A now refused (curl exit ${gotA.code})`);
    t.equal(web.pid('weft-proxy'), proxyPid, 'the proxy was not restarted');
    if (took === undefined) t.comment(tail());
  });
}

if (process.getuid?.() !== 0) {
  t.comment('skipped: the pod sandbox needs root (network namespaces, cgroups)');
} else if (!haveOpenssl()) {
  t.comment('skipped: the openssl CLI is needed for the controller certificate');
} else {
  for (const mode of ['tproxy', 'ebpf'] as const) t.test(`policy from the controller in ${mode} mode`, (t) => modeCase(t, mode));
}
