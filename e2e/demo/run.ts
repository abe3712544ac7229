// `weft demo`: the data plane on this machine without a cluster. A sandbox node runs pods as
// network namespaces; each pod spec goes through the real webhook (HTTPS, AdmissionReview v1)
// and the returned JSONPatch; the injected init container programs interception (tproxy,
// then ebpf) and the injected proxies carry client → server traffic. A policy is applied
// (a watched policy file, standing in for `kubectl apply`): one client allowed, the other
// denied. The proxies' metrics are printed as a table. Everything is removed at the end.
import { request } from 'node:https';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../pkg/log/index.js';
import { defaultValues } from '../../pkg/api/values.js';
import { createInjectorMetrics } from '../../pkg/metrics/injector.js';
import { createRegistry } from '../../pkg/metrics/registry.js';
import { buildControllerApp } from '../../pkg/webhook/app.js';
import { applyJsonPatch } from '../../pkg/inject/testing.js';
import { weftVersion } from '../../pkg/version/index.js';
import { makeCert } from '../../pkg/webhook/test-helpers.js';
import { createNode, type SandboxNode, type SandboxPod } from '../sandbox/index.js';
import type { Pod } from '../sandbox/types.js';

export type Mode = 'tproxy' | 'ebpf';

export interface DemoOptions {
  modes: Mode[];
  /** Where the story is printed. */
  out: (line: string) => void;
  /** Sandbox prefix (kernel-object names). */
  prefix?: string;
}

export interface DemoCheck {
  mode: Mode;
  what: string;
  ok: boolean;
  detail: string;
}

const NS = 'demo';
const SERVER_PORT = 8080;

function serverPod(mode: Mode): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `web-${mode}`, namespace: NS, labels: { app: 'web' }, annotations: { intercept: mode } },
    spec: {
      containers: [
        {
          name: 'web',
          image: 'nginx:1.25',
          ports: [{ containerPort: SERVER_PORT, name: 'http' }],
          readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
        },
      ],
    },
  } as Pod;
}

function clientPod(name: string, mode: Mode): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${name}-${mode}`, namespace: NS, labels: { app: name }, annotations: { intercept: mode } },
    spec: { containers: [{ name: 'client', image: 'demo/client:1', command: ['sleep', 'infinity'] }] },
  } as Pod;
}

/** The policy "kubectl apply"d in the demo: only client-a may reach web. */
function allowOnly(clientIps: readonly string[]): string {
  return `apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: web-allow-client-a
  namespace: ${NS}
spec:
  action: ALLOW
  rules:
    - from:
        - source:
            ipBlocks: [${clientIps.map((ip) => `"${ip}/${ip.includes(':') ? 128 : 32}"`).join(', ')}]
      to:
        - operation:
            ports: [${SERVER_PORT}]
`;
}

interface Webhook {
  port: number;
  ca: string;
  close(): Promise<void>;
}

async function startWebhook(dir: string): Promise<Webhook> {
  const pem = makeCert(dir, 'weft-controller');
  const tls = { cert: Buffer.from(pem.cert), key: Buffer.from(pem.key) };
  const registry = createRegistry();
  const app = await buildControllerApp({
    tls,
    config: { values: defaultValues(), version: weftVersion(), controllerNamespace: 'weft-system' },
    metrics: createInjectorMetrics(registry),
    logger: createLogger('controller', 'warn'),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { port, ca: pem.cert, close: () => app.close() };
}

/** POST the pod as kube-apiserver would and apply the JSONPatch the webhook answers. */
async function admit(hook: Webhook, pod: Pod): Promise<Pod> {
  const body = JSON.stringify({
    kind: 'AdmissionReview',
    apiVersion: 'admission.k8s.io/v1',
    request: {
      uid: `demo-${pod.metadata?.name}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: NS,
      operation: 'CREATE',
      userInfo: { username: 'demo' },
      object: pod,
      oldObject: null,
      dryRun: false,
    },
  });
  const answer = await new Promise<string>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: hook.port, path: '/inject', method: 'POST', ca: hook.ca, headers: { 'content-type': 'application/json' } },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (data += d));
        res.on('end', () => (res.statusCode === 200 ? resolve(data) : reject(new Error(`webhook answered ${res.statusCode}: ${data}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
  const response = (JSON.parse(answer) as { response: { allowed: boolean; patch?: string; status?: { message?: string } } }).response;
  if (!response.allowed) throw new Error(`webhook refused ${pod.metadata?.name}: ${response.status?.message}`);
  if (!response.patch) throw new Error(`webhook did not inject ${pod.metadata?.name}`);
  const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as { op: string; path: string; value?: unknown }[];
  return applyJsonPatch(pod as never, ops) as unknown as Pod;
}

/** Give the server's proxy the policy file (a hostPath the demo writes to). */
function withPolicyFile(pod: Pod, hostDir: string): Pod {
  const spec = pod.spec as { volumes?: unknown[]; initContainers?: Record<string, unknown>[]; containers: Record<string, unknown>[] };
  const proxy = [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === 'weft-proxy');
  if (!proxy) throw new Error('injected pod has no weft-proxy container');
  proxy.env = [...((proxy.env as unknown[]) ?? []), { name: 'WEFT_POLICY_FILE', value: '/etc/weft-policy/policy.yaml' }];
  proxy.volumeMounts = [...((proxy.volumeMounts as unknown[]) ?? []), { name: 'weft-policy', mountPath: '/etc/weft-policy', readOnly: true }];
  spec.volumes = [...(spec.volumes ?? []), { name: 'weft-policy', hostPath: { path: hostDir, type: 'Directory' } }];
  return pod;
}

async function curl(pod: SandboxPod, url: string): Promise<string> {
  const r = await pod.exec(['curl', '-sS', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', url], { container: 'client', timeoutMs: 10000 });
  return r.code === 0 ? `HTTP ${r.stdout.trim()}` : `refused (curl exit ${r.code}: ${r.stderr.trim().split('\n').pop() ?? ''})`;
}

async function waitFor(pred: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await pred()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return pred();
}

type MetricRow = { pod: string; inbound: number; outbound: number; sent: number; received: number; requests: number; allowed: number; denied: number };

async function proxyMetrics(node: SandboxNode, pod: SandboxPod): Promise<MetricRow> {
  const r = await node.exec(['curl', '-sS', '-m', '5', `http://${pod.ipv4}:15020/metrics`]);
  const sum = (name: string, filter?: RegExp): number =>
    r.stdout
      .split('\n')
      .filter((l) => l.startsWith(name) && (filter === undefined || filter.test(l)))
      .reduce((acc, l) => acc + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return {
    pod: pod.name,
    inbound: sum('weft_tcp_connections_opened_total', /direction="inbound"/),
    outbound: sum('weft_tcp_connections_opened_total', /direction="outbound"/),
    sent: sum('weft_tcp_sent_bytes_total'),
    received: sum('weft_tcp_received_bytes_total'),
    requests: sum('weft_requests_total'),
    allowed: sum('weft_authz_decisions_total', /decision="allow"/),
    denied: sum('weft_authz_decisions_total', /decision="deny"/),
  };
}

function table(rows: MetricRow[]): string[] {
  const head = ['pod', 'conns in', 'conns out', 'bytes sent', 'bytes recv', 'http reqs', 'authz allow', 'authz deny'];
  const cells = rows.map((r) => [r.pod, r.inbound, r.outbound, r.sent, r.received, r.requests, r.allowed, r.denied].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)];
}

export async function runDemo(opts: DemoOptions): Promise<DemoCheck[]> {
  const out = opts.out;
  const checks: DemoCheck[] = [];
  const check = (mode: Mode, what: string, ok: boolean, detail: string) => {
    checks.push({ mode, what, ok, detail });
    out(`  ${ok ? 'ok  ' : 'FAIL'} ${what}: ${detail}`);
  };
  const dir = mkdtempSync(join(tmpdir(), 'weft-demo-'));
  let node: SandboxNode | undefined;
  let hook: Webhook | undefined;
  try {
    hook = await startWebhook(dir);
    out(`webhook: weft controller (POST /inject, AdmissionReview v1) on https://127.0.0.1:${hook.port}`);
    node = await createNode({ prefix: opts.prefix ?? 'wfdemo', images: { 'demo/client': (ctx) => ({ argv: ctx.command ?? ['sleep', 'infinity'] }) } });
    out(`node:    network namespace ${node.netns}, bridge ${node.hostIPv4} / ${node.hostIPv6}, cgroup ${node.cgroupRoot}`);
    for (const mode of opts.modes) {
      out(`\n== interception mode: ${mode}`);
      const policyDir = join(dir, `policy-${mode}`);
      mkdirSync(policyDir, { recursive: true });
      writeFileSync(join(policyDir, 'policy.yaml'), '# no policy yet: the pod default (allow) applies\n');
      const web = await node.runPod(withPolicyFile(await admit(hook, serverPod(mode)), policyDir), { timeoutMs: 60000 });
      const a = await node.runPod(await admit(hook, clientPod('client-a', mode)), { timeoutMs: 60000 });
      const b = await node.runPod(await admit(hook, clientPod('client-b', mode)), { timeoutMs: 60000 });
      out(`pods:    ${web.name} ${web.ipv4} (nginx :${SERVER_PORT}), ${a.name} ${a.ipv4}, ${b.name} ${b.ipv4} — each injected with weft-init + weft-proxy`);
      const url4 = `http://${web.ipv4}:${SERVER_PORT}/`;
      const url6 = `http://[${web.ipv6}]:${SERVER_PORT}/`;
      for (const [p, u] of [[a, url4], [a, url6], [b, url4]] as const) {
        const got = await curl(p, u);
        check(mode, `${p.name} → ${u} (no policy)`, got === 'HTTP 200', got);
      }
      out(`policy:  apply AuthorizationPolicy web-allow-client-a (ALLOW from ${a.ipv4}, ${a.ipv6} to port ${SERVER_PORT})`);
      writeFileSync(join(policyDir, 'policy.yaml'), allowOnly(a.ips));
      const denied = await waitFor(async () => (await curl(b, url4)) !== 'HTTP 200', 5000);
      check(mode, `${b.name} → ${url4} (policy)`, denied, denied ? await curl(b, url4) : 'still allowed after 5 s');
      if (!denied || process.env.WEFT_DEMO_DEBUG) out(web.logs('weft-proxy').split('\n').slice(-15).join('\n'));
      const got = await curl(a, url4);
      check(mode, `${a.name} → ${url4} (policy)`, got === 'HTTP 200', got);
      const rows = [await proxyMetrics(node, a), await proxyMetrics(node, b), await proxyMetrics(node, web)];
      out(`metrics: from each proxy's GET :15020/metrics`);
      for (const l of table(rows)) out(`  ${l}`);
      check(mode, 'proxies counted the traffic', rows[0]!.outbound >= 3 && rows[2]!.inbound >= 3 && rows[2]!.denied >= 1, `client-a out ${rows[0]!.outbound}, web in ${rows[2]!.inbound}, web denied ${rows[2]!.denied}`);
      for (const p of [a, b, web]) await p.delete();
    }
  } finally {
    await node?.teardown();
    await hook?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const failed = checks.filter((c) => !c.ok).length;
  out(`\n${checks.length - failed} of ${checks.length} demo checks passed; everything the demo made is removed.`);
  return checks;
}
