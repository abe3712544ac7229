// Authorization policy end to end, in both interception modes: pods injected by the real
// injector in the pod sandbox, the server's proxy watching a policy file (as `weft demo` does).
// (a) an ALLOW policy selecting `app: web` by matchLabels admits client A and refuses client B
// before nginx sees anything; (b) an HTTP DENY rule answers 403 for /admin while / stays 200 on
// the same keep-alive connection; (c) a file edit changes enforcement within 2 s, no restart;
// (d) under default deny, kubelet probes (rewritten to the proxy's /app-health) still pass
// while a client's direct request to the app port is refused.
import t, { type Test } from 'tap';
import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultValues } from '../../pkg/api/values.js';
import type { Pod as ApiPod } from '../../pkg/api/k8s-types.js';
import { injectPod, isSkip } from '../../pkg/inject/index.js';
import { weftVersion } from '../../pkg/version/index.js';
import { createNode, type ImageMapping, type Pod, type SandboxNode, type SandboxPod } from '../sandbox/index.js';

type Mode = 'tproxy' | 'ebpf';
const PREFIX = 'wfpe';
const NS = 'pol';
const PORT = 8080;
const POLICY_DIR = '/etc/weft-policy';

/** nginx answering "hello" on every path, logging each request it sees to a file in the pod dir. */
const nginxImage: ImageMapping = (ctx) => {
  const dir = ctx.podDir;
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  log_format seen '$remote_addr $request $status';
  access_log ${dir}/access.log seen;
  keepalive_requests 100;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen ${PORT};
    listen [::]:${PORT};
    location / { default_type text/plain; return 200 "hello from ${ctx.pod.name}\\n"; }
  }
}
`,
  );
  return { argv: ['nginx', '-p', dir, '-e', 'stderr', '-c', conf] };
};

function inject(pod: Pod): Pod {
  const r = injectPod(pod as unknown as ApiPod, { name: NS, labels: { 'weft.dev/inject': 'enabled' } }, { values: defaultValues(), version: weftVersion() });
  if (isSkip(r)) throw new Error(`injector skipped ${pod.metadata?.name}: ${JSON.stringify(r)}`);
  return r.injectedPod as unknown as Pod;
}

const proxyOf = (pod: Pod) => {
  const c = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((x) => x.name === 'weft-proxy');
  if (!c) throw new Error(`${pod.metadata?.name}: no weft-proxy container`);
  return c;
};

/** Mount the host directory into the proxy and point WEFT_POLICY_FILE at the file in it. */
function withPolicyFile(pod: Pod, hostDir: string): Pod {
  const proxy = proxyOf(pod);
  proxy.env = [...(proxy.env ?? []), { name: 'WEFT_POLICY_FILE', value: `${POLICY_DIR}/policy.yaml` }];
  proxy.volumeMounts = [...(proxy.volumeMounts ?? []), { name: 'weft-policy', mountPath: POLICY_DIR, readOnly: true }];
  pod.spec.volumes = [...(pod.spec.volumes ?? []), { name: 'weft-policy', hostPath: { path: hostDir, type: 'Directory' } }];
  return pod;
}

function serverPod(name: string, mode: Mode, annotations: Record<string, string> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app: name === 'web' ? 'web' : name, tier: 'front' }, annotations: { intercept: mode, ...annotations } },
    spec: {
      containers: [
        { name: 'nginx', image: 'wfpe/nginx:1', ports: [{ name: 'http', containerPort: PORT }], readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1, failureThreshold: 30 } },
      ],
    },
  } as Pod;
}

function clientPod(name: string, mode: Mode): Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, labels: { app: name }, annotations: { intercept: mode } }, spec: { containers: [{ name: 'client', image: 'wfpe/client:1', command: ['sleep', 'infinity'] }] } } as Pod;
}

const cidrs = (ips: readonly string[]) => ips.map((ip) => `"${ip}/${ip.includes(':') ? 128 : 32}"`).join(', ');
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

interface Got {
  code: number | null;
  status: string;
  err: string;
}

async function get(from: SandboxPod, url: string): Promise<Got> {
  const r = await from.exec(['curl', '-sS', '-m', '3', '-o', '/dev/null', '-w', '%{http_code}', url], { container: 'client', timeoutMs: 6000 });
  return { code: r.timedOut ? -1 : r.code, status: r.stdout.trim(), err: r.stderr.trim() };
}

const seenByNginx = (pod: SandboxPod): string[] => {
  try {
    return readFileSync(join(pod.dir, 'access.log'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

async function metric(node: SandboxNode, pod: SandboxPod, name: string, filter: RegExp): Promise<number> {
  const r = await node.exec(['curl', '-sS', '-m', '3', `http://${pod.ipv4}:15020/metrics`], { timeoutMs: 6000 });
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && filter.test(l))
    .reduce((acc, l) => acc + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** Polls `check` from the moment of the file write; returns when it first held (ms after the write), or undefined. */
async function within(ms: number, since: number, check: () => Promise<boolean>): Promise<number | undefined> {
  for (;;) {
    const started = Date.now();
    if (await check()) return started - since;
    if (Date.now() - since > ms) return undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function modeCase(t: Test, mode: Mode): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `${PREFIX}-${mode}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The eBPF-mode proxy runs as uid 1337: it must be able to read the mounted directory.
  chmodSync(dir, 0o755);
  const node = await createNode({ prefix: PREFIX, name: mode === 'tproxy' ? 'tp' : 'eb', t, images: { 'wfpe/nginx': nginxImage } });
  const a = await node.runPod(inject(clientPod('client-a', mode)), { timeoutMs: 30000 });
  const b = await node.runPod(inject(clientPod('client-b', mode)), { timeoutMs: 30000 });
  writePolicy(dir, allowWebFrom(a.ips) + denyOthers);
  const webSpec = withPolicyFile(inject(serverPod('web', mode)), dir);
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

  await t.test('(d) default deny: the probed pod becomes Ready, a client is refused', async (t) => {
    const guardSpec = inject(serverPod('guard', mode, { 'weft.dev/default-inbound-policy': 'deny' }));
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
