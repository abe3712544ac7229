// The chart and `weft controller` agree: the rendered Deployment's args, with the rendered
// ConfigMap and TLS Secret laid out as the kubelet would mount them, start a real controller
// that answers the probes the chart points at, and serves HTTPS with the chart's certificate.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { applyJsonPatch } from '../pkg/inject/testing.js';
import { deploymentPod, podReview, post } from '../pkg/webhook/test-helpers.js';
import { helmPath, renderChart, repoRoot } from './helm.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function httpStatus(url: string): Promise<number> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1000) })).status;
  } catch {
    return 0;
  }
}

function httpsGet(port: number, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', method: 'GET', ca, servername: 'weft-controller.weft-system.svc', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

let skip: string | false = false;
try {
  helmPath();
} catch (e) {
  skip = `helm unavailable: ${(e as Error).message}`;
}
if (!skip && !existsSync(join(repoRoot, 'dist', 'cmd', 'controller', 'index.js'))) skip = 'weft controller is not built';

t.test('the rendered Deployment starts a working controller from the rendered files', { skip }, async (t) => {
  const objs = parseAllDocuments(renderChart()).map((d) => d.toJS() as Any);
  const dep = objs.find((o) => o?.kind === 'Deployment');
  const cm = objs.find((o) => o?.kind === 'ConfigMap');
  const secret = objs.find((o) => o?.kind === 'Secret');
  const c = dep.spec.template.spec.containers[0];

  // Lay the mounts out under a temp root and point the args at it.
  const root = mkdtempSync(join(tmpdir(), 'weft-chart-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const mountOf = (name: string) => c.volumeMounts.find((m: Any) => m.name === name);
  const valuesMount = mountOf('values');
  mkdirSync(join(root, 'etc/weft/tls'), { recursive: true });
  writeFileSync(join(root, valuesMount.mountPath), cm.data[valuesMount.subPath]);
  for (const k of ['tls.crt', 'tls.key', 'ca.crt']) writeFileSync(join(root, mountOf('tls').mountPath, k), Buffer.from(secret.data[k], 'base64'));

  const [port, adminPort] = [await freePort(), await freePort()];
  const args = (c.args as string[]).map((a) =>
    a.startsWith('--port=') ? `--port=${port}` : a.startsWith('--admin-port=') ? `--admin-port=${adminPort}` : a.replace(/=(\/etc\/weft\/)/, `=${root}$1`),
  );
  t.equal(args[0], 'controller');
  // Not tap's loader hooks (NODE_OPTIONS, TAP_*): the controller runs as it would in the pod.
  // (dist/cmd/main.js is what bin/weft imports; tap's process tracking cannot hook an
  // extension-less ESM entry point.)
  const env: Record<string, string> = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !/NODE_OPTIONS|TAP|TS_NODE/i.test(k))) as Record<string, string>;
  for (const e of c.env) env[e.name] = e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace' ? 'weft-system' : 'weft-controller-0';
  const child = spawn(process.execPath, [join(repoRoot, 'dist', 'cmd', 'main.js'), ...args, '--address=127.0.0.1'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  t.teardown(() => {
    if (exited === undefined) child.kill('SIGKILL');
  });

  const probe = (p: string) => `http://127.0.0.1:${adminPort}${p}`;
  let ready = 0;
  // Bounded wait for start-up; generous because the unit suite shares two cores.
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && exited === undefined && ready !== 200) {
    ready = await httpStatus(probe(c.readinessProbe.httpGet.path));
    if (ready !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(ready, 200, `readinessProbe ${c.readinessProbe.httpGet.path} answers 200 (stderr: ${stderr.slice(0, 500)})`);
  t.equal(await httpStatus(probe(c.livenessProbe.httpGet.path)), 200, `livenessProbe ${c.livenessProbe.httpGet.path}`);
  const ca = Buffer.from(secret.data['ca.crt'], 'base64').toString();
  const status = await httpsGet(port, ca).catch((e: Error) => `TLS error: ${e.message}`);
  t.not(status, 0, 'the webhook port serves TLS with the chart certificate, trusted through the caBundle CA');
  t.notOk(typeof status === 'string', String(status));

  // Default values: the injected proxy streams policy from this release's controller Service
  // and verifies it with the CA of the chart's Secret (public; the key stays with the controller).
  const answer = await post(port, '/inject', JSON.stringify(podReview('chart-policy', deploymentPod())), { ca });
  const r = (JSON.parse(answer.body) as { response: { patch?: string } }).response;
  const injected = applyJsonPatch(deploymentPod(), JSON.parse(Buffer.from(r.patch ?? '', 'base64').toString('utf8')) as { op: string; path: string }[]) as Any;
  const proxy = injected.spec.initContainers.find((x: Any) => x.name === 'weft-proxy');
  const argAfter = (flag: string) => proxy.args[proxy.args.indexOf(flag) + 1];
  t.equal(argAfter('--controller'), 'https://weft-controller.weft-system.svc:443', 'the proxy gets --controller: the controller Service');
  t.equal(proxy.env.find((e: Any) => e.name === 'WEFT_CONTROLLER_CA_PEM')?.value, ca, 'and the CA that signed the controller certificate');
  t.notOk(JSON.stringify(injected).includes(Buffer.from(secret.data['tls.key'], 'base64').toString().trim().split('\n')[1] ?? 'no key'), 'no part of the TLS key reaches the pod');
  t.ok(injected.spec.volumes.some((v: Any) => v.name === 'weft-token' && v.projected.sources[0].serviceAccountToken.audience === 'weft'), 'and the projected token for audience weft');
  child.kill('SIGTERM');
  await new Promise((r) => (exited === undefined ? child.once('exit', r) : r(undefined)));
});
