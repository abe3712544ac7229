// Authorization policy end to end, in both interception modes: pods injected by the real
// injector in the pod sandbox, the server's proxy watching a policy file (as `weft demo` does).
// (a) an ALLOW policy selecting `app: web` by matchLabels admits client A and refuses client B
// before nginx sees anything; (b) an HTTP DENY rule answers 403 for /admin while / stays 200 on
// the same keep-alive connection; (c) a file edit changes enforcement within 2 s, no restart;
// (d) under default deny, kubelet probes (rewritten to the proxy's /app-health) still pass
// while a client's direct request to the app port is refused; (e) raw TCP to a second app
// container: the denied client sees a reset and the app sees no connection and no byte.
// The controller stream (--controller) has its own file, controller.test.ts.
import t, { type Test } from 'tap';
import { chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNode, type Pod } from '../sandbox/index.js';
import { NS, PORT, TCP_PORT, cidrs, clientPod, get, inject, metric, nginxImage, proxyOf, rawTcp, seenByNginx, seenByTcpApp, serverPod, tcpRecorderImage, within, type Mode } from './helpers.js';

const PREFIX = 'wfpe';
const POLICY_DIR = '/etc/weft-policy';

/** Mount the host directory into the proxy and point WEFT_POLICY_FILE at the file in it. */
function withPolicyFile(pod: Pod, hostDir: string): Pod {
  const proxy = proxyOf(pod);
  proxy.env = [...(proxy.env ?? []), { name: 'WEFT_POLICY_FILE', value: `${POLICY_DIR}/policy.yaml` }];
  proxy.volumeMounts = [...(proxy.volumeMounts ?? []), { name: 'weft-policy', mountPath: POLICY_DIR, readOnly: true }];
  pod.spec.volumes = [...(pod.spec.volumes ?? []), { name: 'weft-policy', hostPath: { path: hostDir, type: 'Directory' } }];
  return pod;
}

const policy = (name: string, spec: string) => `apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: ${NS}}
spec:
${spec.replace(/^/gm, '  ')}
---
`;
/** Only `who` may reach pods labelled app=web. */
const allowWebFrom = (who: readonly string[]) => policy('web-allow', `selector: {matchLabels: {app: web}}\naction: ALLOW\nrules:\n- from: [{source: {ipBlocks: [${cidrs(who)}]}}]`);
/** Selects nobody here: proves a selector that does not match the pod's labels is not applied. */
const denyOthers = policy('api-deny-all', 'selector: {matchLabels: {app: api}}\naction: DENY\nrules: [{}]');
const denyAdmin = policy('web-no-admin', 'selector: {matchLabels: {app: web}}\naction: DENY\nrules:\n- to: [{operation: {paths: ["/admin*"]}}]');

/** Replace the file atomically, as kubectl/ConfigMap updates do (a half-written file is never read). */
function writePolicy(dir: string, text: string): void {
  writeFileSync(join(dir, '.policy.tmp'), text);
  renameSync(join(dir, '.policy.tmp'), join(dir, 'policy.yaml'));
}

async function modeCase(t: Test, mode: Mode): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `${PREFIX}-${mode}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The eBPF-mode proxy runs as uid 1337: it must be able to read the mounted directory.
  chmodSync(dir, 0o755);
  const node = await createNode({ prefix: PREFIX, name: mode === 'tproxy' ? 'tp' : 'eb', t, images: { 'wfpe/nginx': nginxImage, 'wfpe/tcprec': tcpRecorderImage } });
  const a = await node.runPod(inject(clientPod('client-a', mode)), { timeoutMs: 30000 });
  const b = await node.runPod(inject(clientPod('client-b', mode)), { timeoutMs: 30000 });
  writePolicy(dir, allowWebFrom(a.ips) + denyOthers);
  const webSpec = withPolicyFile(inject(serverPod('web', mode, { tcp: true })), dir);
  t.equal(proxyOf(webSpec).env?.find((e) => e.name === 'WEFT_POD_LABELS')?.value, '{"app":"web","tier":"front"}', 'the injector gave the proxy the pod labels');
  const web = await node.runPod(webSpec, { timeoutMs: 30000 });
  const url = `http://${web.ipv4}:${PORT}/`;
  const url6 = `http://[${web.ipv6}]:${PORT}/`;
  const proxyPid = web.pid('weft-proxy');
  const tail = () => web.logs('weft-proxy').split('\n').slice(-10).join('\n');

  await t.test('(a) ALLOW by matchLabels: A gets 200, B is refused before nginx', async (t) => {
    t.match(await get(a, url), { code: 0, status: '200' }, 'client A, IPv4');
    t.match(await get(a, url6), { code: 0, status: '200' }, 'client A, IPv6');
    const nginxBefore = seenByNginx(web).length;
    const deniedBefore = await metric(node, web, 'weft_authz_decisions_total', /decision="deny"/);
    const got = await get(b, url);
    t.not(got.code, 0, `client B's connection fails (curl: ${got.err || got.status})`);
    t.not(got.status, '200');
    t.equal(seenByNginx(web).length, nginxBefore, 'nginx never saw client B');
    t.ok((await metric(node, web, 'weft_authz_decisions_total', /decision="deny"/)) > deniedBefore, "the server's proxy counted a deny");
    if (got.code === 0) t.comment(tail());
  });

  await t.test('(b)+(c) an HTTP DENY rule added to the file: /admin 403, / 200 on one connection', async (t) => {
    const wrote = Date.now();
    writePolicy(dir, allowWebFrom(a.ips) + denyOthers + denyAdmin);
    const took = await within(2000, wrote, async () => (await get(a, `${url}admin`)).status === '403');
    t.ok(took !== undefined, `the edit took effect within 2 s (${took} ms)`);
    const r = await a.exec(['curl', '-sS', '-m', '5', '-w', '\\n=%{http_code} %{num_connects}\\n', `${url}admin/users`, url], { container: 'client', timeoutMs: 8000 });
    const answers = [...r.stdout.matchAll(/=(\d{3}) (\d+)\n/g)].map((m) => ({ status: m[1], connects: Number(m[2]) }));
    t.same(answers, [{ status: '403', connects: 1 }, { status: '200', connects: 0 }], 'one connection: 403 for /admin/users, then 200 for /');
    t.match(r.stdout, /RBAC: access denied/, 'the short 403 body');
    t.match(r.stdout, /hello from web/, 'nginx answered /');
    t.notOk(seenByNginx(web).some((l) => l.includes('/admin/users')), 'nginx never saw the denied request');
  });

  await t.test('(c) a file edit flips who may connect, without a restart', async (t) => {
    t.not((await get(b, url)).status, '200', 'before the edit, client B is refused');
    const wrote = Date.now();
    writePolicy(dir, allowWebFrom(b.ips) + denyOthers);
    const took = await within(2000, wrote, async () => (await get(b, url)).status === '200');
    t.ok(took !== undefined, `client B admitted within 2 s of the edit (${took} ms)`);
    const gotA = await get(a, url);
    t.not(gotA.status, '200', `client A now refused (curl exit ${gotA.code})`);
    t.equal(web.pid('weft-proxy'), proxyPid, 'the proxy was not restarted');
    if (took === undefined) t.comment(tail());
  });

  await t.test('(e) raw TCP: a denied client is reset, no byte reaches the app; the allowed one talks', async (t) => {
    // The file now admits only client B (from (c)). Client C has no proxy of its own, so what
    // it sees is exactly what the server's proxy did.
    const c = await node.runPod(clientPod('client-c', mode), { timeoutMs: 30000 });
    const before = seenByTcpApp(web).length;
    t.equal(await rawTcp(node, b, web.ipv4, TCP_PORT), 'reply', "client B (allowed) gets the app's answer");
    t.ok(seenByTcpApp(web).slice(before).some((l) => l.startsWith('data ')), 'and the app saw its bytes');
    const mark = seenByTcpApp(web).length;
    const deniedBefore = await metric(node, web, 'weft_tcp_connection_failures_total', /reason="policy_denied"/);
    t.equal(await rawTcp(node, c, web.ipv4, TCP_PORT), 'reset', 'client C (denied, unmeshed) sees a connection reset');
    t.equal(await rawTcp(node, c, web.ipv6, TCP_PORT), 'reset', 'also over IPv6');
    const viaProxy = await rawTcp(node, a, web.ipv4, TCP_PORT);
    t.not(viaProxy, 'reply', `client A (denied, through its own proxy) gets no answer (${viaProxy})`);
    await new Promise((r) => setTimeout(r, 200));
    t.same(seenByTcpApp(web).slice(mark), [], 'the app saw neither a connection nor a byte from C or A');
    t.ok((await metric(node, web, 'weft_tcp_connection_failures_total', /reason="policy_denied"/)) >= deniedBefore + 3, 'counted as policy_denied');
  });

  await t.test('(d) default deny: the probed pod becomes Ready, a client is refused', async (t) => {
    const guardSpec = inject(serverPod('guard', mode, { annotations: { 'weft.dev/default-inbound-policy': 'deny' } }));
    const app = guardSpec.spec.containers.find((c) => c.name === 'nginx');
    t.match(app?.readinessProbe?.httpGet, { path: '/app-health/nginx/readyz', port: 15020 }, 'the injector pointed the probe at the proxy');
    t.match(proxyOf(guardSpec).args?.join(' '), /--default-inbound-policy deny/);
    const guard = await node.runPod(guardSpec, { timeoutMs: 30000 });
    t.ok(guard.isReady(), 'Ready: the kubelet-like probe passed through /app-health');
    t.ok(await guard.probe('nginx', 'readiness'), 'and keeps passing');
    const got = await get(a, `http://${guard.ipv4}:${PORT}/`);
    t.not(got.code, 0, `client A's direct request to the app port is refused (curl: ${got.err || got.status})`);
    t.ok((await metric(node, guard, 'weft_authz_decisions_total', /decision="deny"/)) >= 1, 'counted as a deny');
  });
}

if (process.getuid?.() !== 0) {
  t.comment('skipped: the pod sandbox needs root (network namespaces, cgroups)');
} else {
  for (const mode of ['tproxy', 'ebpf'] as const) t.test(`policy in ${mode} mode`, (t) => modeCase(t, mode));
}
